// Grad mode and autocast as scopes: each restores the previous state when fn returns or throws.
import { native } from './native.js';
import { dtypeCode, type DType } from './dtype.js';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = native.isGradEnabled() as boolean;
  native.setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn without recording autograd history (torch.no_grad()). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs fn with autograd recording on, even inside noGrad (torch.enable_grad()). */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);
export const isGradEnabled = (): boolean => native.isGradEnabled();

let autocastDepth = 0;
/**
 * Runs fn under CPU autocast (torch.autocast('cpu', dtype)): convolutions and matmuls run in
 * bfloat16 where the CPU supports it, reductions and losses stay float32.
 */
export function autocast<T>(fn: () => T, dtype: DType = 'bfloat16'): T {
  native.setAutocast(true, dtypeCode(dtype));
  autocastDepth++;
  try {
    return fn();
  } finally {
    if (--autocastDepth === 0) native.setAutocast(false, dtypeCode(dtype));
  }
}
