// Eval-mode convolution, norm, residual addition and activation as one oneDNN primitive
// (native/fused_conv.cc): the norm folded into the weights, the rest applied as post-ops, the
// weights packed once. nn's chain() recognises the pattern (src/nn/fuse.ts); this is the engine's
// half, which knows nothing about modules.
import { native, type FusedConvState } from './native.js';
import { Tensor } from './tensor.js';
import { isGradEnabled } from './autograd.js';

export type FusedActivation = 'relu' | 'relu6' | 'silu' | 'sigmoid' | 'hardswish' | 'tanh' | 'gelu' | 'gelu_tanh';

export interface FusedConvSpec {
  stride: [number, number];
  /** top, left, bottom, right */
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
  activation: FusedActivation | null;
  /** whether the output gets a residual added before the activation */
  residual: boolean;
}

/** The tensors a fused convolution is folded from; the norm's are absent for a bare convolution. */
export interface FusedConvSources {
  weight: Tensor;
  bias: Tensor | null;
  norm: { weight: Tensor | null; bias: Tensor | null; runningMean: Tensor; runningVar: Tensor; eps: number } | null;
}

let enabled = process.env.CONVKIT_FUSE !== '0';
let calls = 0;
const available = native.fusedConvAvailable();

/**
 * Turns fused inference convolutions on or off (on by default where the addon has them;
 * CONVKIT_FUSE=0 turns them off), for comparisons and tests. Returns the previous setting.
 */
export function setFusedInference(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

/** Whether a convolution run now may take the fused path: on, available, and no autograd recording. */
export function fusedInferenceActive(): boolean {
  return enabled && available && !isGradEnabled();
}

/** How many fused convolutions have run in this process (tests and profiles check the path was taken). */
export const fusedConvCalls = (): number => calls;

export class FusedConv {
  readonly #state: FusedConvState;
  readonly spec: FusedConvSpec;

  constructor(spec: FusedConvSpec) {
    this.spec = spec;
    this.#state = native.fusedConvCreate(spec.stride, spec.padding, spec.dilation, spec.groups, spec.activation ?? '', spec.residual);
  }

  /** act(conv(x) folded with the norm [+ residual]); channels-last, in bfloat16 under autocast. */
  run(x: Tensor, s: FusedConvSources, residual?: Tensor): Tensor {
    const n = s.norm;
    calls++;
    return new Tensor(native.fusedConv(this.#state, x.handle, s.weight.handle, s.bias?.handle, n?.weight?.handle, n?.bias?.handle,
      n?.runningMean.handle, n?.runningVar.handle, n?.eps ?? 0, residual?.handle));
  }
}
