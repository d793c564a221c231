// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_. The norms come from
// one multi-tensor call and the scaling from another; nothing waits on the device.
import { F, Tensor, noGrad, stack, tensor, tidy } from '../engine/index.js';

export interface ClipGradNormOptions {
  /** Throw when the total norm is NaN or infinite (reads the norm back: a device sync). */
  errorIfNonfinite?: boolean;
}

function gradsOf(params: Iterable<Tensor> | Tensor): Tensor[] {
  const list = params instanceof Tensor ? [params] : [...params];
  return list.map((p) => p.grad).filter((g): g is Tensor => g !== null);
}

/**
 * Scales the gradients in place so that their total norm (all of them as one vector) is at
 * most maxNorm, and returns that total norm before clipping as a 0-d tensor (dispose it, or
 * call this inside tidy; .item() reads it). Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Iterable<Tensor> | Tensor, maxNorm: number, normType = 2, o: ClipGradNormOptions = {}): Tensor {
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new TypeError(`clipGradNorm: maxNorm must be a number, got ${maxNorm}`);
  if (typeof normType !== 'number' || Number.isNaN(normType)) throw new TypeError(`clipGradNorm: normType must be a number, got ${normType}`);
  return noGrad(() => tidy(() => {
    const grads = gradsOf(params);
    if (grads.length === 0) return tensor(0, { dtype: 'float32' });
    const total = normType === Infinity
      ? (grads.length === 1 ? grads[0].abs().max() : stack(grads.map((g) => g.abs().max())).max())
      : stack(F.foreach.norm(grads, normType)).norm(normType);
    if (o.errorIfNonfinite && !Number.isFinite(total.item())) {
      throw new Error(`clipGradNorm: the total norm of order ${normType} of the gradients is ${total.item()}; it cannot be clipped`);
    }
    // PyTorch's max_norm / (total + 1e-6) is reciprocal(total + 1e-6) * max_norm
    const coef = total.add(1e-6).reciprocal().mul(maxNorm).clamp(undefined, 1);
    F.foreach.mulTensor_(grads, coef);
    return total;
  }));
}

/** Clamps every gradient element into [-clipValue, clipValue] in place. */
export function clipGradValue(params: Iterable<Tensor> | Tensor, clipValue: number): void {
  if (typeof clipValue !== 'number' || !(clipValue >= 0)) throw new RangeError(`clipGradValue: clipValue must be a number >= 0, got ${clipValue}`);
  noGrad(() => tidy(() => {
    const grads = gradsOf(params);
    if (grads.length > 0) F.foreach.clamp_(grads, -clipValue, clipValue);
  }));
}
