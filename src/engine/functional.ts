// torch.nn.functional: the stateless building blocks that layers are made of.
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';
import { metaConv, metaEmbedding, metaLike, shapeOnly } from './device.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (Array.isArray(v) ? v : [v, v]);
const h = (t: Tensor | undefined | null): Handle | undefined => (t ? t.handle : undefined);
const T = (handle: Handle): Tensor => new Tensor(handle);

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function reduction(r: Reduction | undefined): number {
  const code = REDUCTION[r ?? 'mean'];
  if (code === undefined) throw new TypeError(`reduction must be 'none', 'mean' or 'sum', got '${String(r)}'`);
  return code;
}

export interface ConvOptions {
  stride?: Pair;
  /** integers, or 'same' / 'valid' as in PyTorch */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvOptions = {}): Tensor {
  const padding = typeof o.padding === 'string' ? o.padding : pair(o.padding ?? 0);
  if (shapeOnly(x)) return metaConv('conv2d', x, weight, pair(o.stride ?? 1), padding, pair(o.dilation ?? 1), o.groups ?? 1);
  return T(native.conv2d(x.handle, weight.handle, h(bias), pair(o.stride ?? 1), padding, pair(o.dilation ?? 1), o.groups ?? 1));
}

export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: { stride?: number; padding?: number | 'same' | 'valid'; dilation?: number; groups?: number } = {}): Tensor {
  const padding = typeof o.padding === 'string' ? o.padding : [o.padding ?? 0];
  if (shapeOnly(x)) return metaConv('conv1d', x, weight, [o.stride ?? 1], padding, [o.dilation ?? 1], o.groups ?? 1);
  return T(native.conv1d(x.handle, weight.handle, h(bias), [o.stride ?? 1], padding, [o.dilation ?? 1], o.groups ?? 1));
}

export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: { stride?: Pair; padding?: Pair; outputPadding?: Pair; groups?: number; dilation?: Pair } = {}): Tensor {
  return T(native.convTranspose2d(x.handle, weight.handle, h(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.outputPadding ?? 0), o.groups ?? 1, pair(o.dilation ?? 1)));
}

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor => T(native.linear(x.handle, weight.handle, h(bias)));

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
  /** y + residual (a tensor of x's shape), in the same passes over the map where the engine can */
  residual?: Tensor | null;
  /** max(y, 0), after the residual, in the same passes over the map where the engine can (training, channels-last) */
  relu?: boolean;
}
/** Batch norm; in training it updates runningMean/runningVar in place, as PyTorch does. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, o: BatchNormOptions = {}): Tensor {
  if (shapeOnly(x)) return metaLike(x);
  return T(native.batchNorm(x.handle, h(runningMean), h(runningVar), h(o.weight), h(o.bias), o.training ?? false, o.momentum ?? 0.1, o.eps ?? 1e-5, o.relu ?? false, h(o.residual)));
}
export const layerNorm = (x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor =>
  shapeOnly(x) ? metaLike(x) : T(native.layerNorm(x.handle, normalizedShape, h(weight), h(bias), eps));
export const groupNorm = (x: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor =>
  shapeOnly(x) ? metaLike(x) : T(native.groupNorm(x.handle, numGroups, h(weight), h(bias), eps));

export interface PoolOptions {
  kernelSize: Pair;
  /** defaults to kernelSize */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}
export function maxPool2d(x: Tensor, o: PoolOptions & { dilation?: Pair }): Tensor {
  const k = pair(o.kernelSize);
  return T(native.maxPool2d(x.handle, k, pair(o.stride ?? k), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
}
export function avgPool2d(x: Tensor, o: PoolOptions & { countIncludePad?: boolean }): Tensor {
  const k = pair(o.kernelSize);
  return T(native.avgPool2d(x.handle, k, pair(o.stride ?? k), pair(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true));
}
export const adaptiveAvgPool2d = (x: Tensor, outputSize: Pair): Tensor => T(native.adaptiveAvgPool2d(x.handle, pair(outputSize)));
export const adaptiveMaxPool2d = (x: Tensor, outputSize: Pair): Tensor => T(native.adaptiveMaxPool2d(x.handle, pair(outputSize)));

/** Pads the last dims: [left, right, top, bottom], as F.pad. */
export const pad = (x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor =>
  T(native.pad(x.handle, padding, mode, value));

export function interpolate(x: Tensor, size: Pair, o: { mode?: 'nearest' | 'bilinear' | 'bicubic'; alignCorners?: boolean; antialias?: boolean } = {}): Tensor {
  return T(native.interpolate(x.handle, pair(size), o.mode ?? 'nearest', o.alignCorners ?? false, o.antialias ?? false));
}

export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest' | 'bicubic';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}
const GRID_MODES = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const GRID_PADDING = { zeros: 0, border: 1, reflection: 2 } as const;
/** Samples x [N, C, H, W] at grid [N, Ho, Wo, 2] (x, y in [-1, 1]), as F.grid_sample. */
export function gridSample(x: Tensor, grid: Tensor, o: GridSampleOptions = {}): Tensor {
  const mode = GRID_MODES[o.mode ?? 'bilinear'];
  const padding = GRID_PADDING[o.paddingMode ?? 'zeros'];
  if (mode === undefined) throw new TypeError(`gridSample: mode must be 'bilinear', 'nearest' or 'bicubic', got '${String(o.mode)}'`);
  if (padding === undefined) throw new TypeError(`gridSample: paddingMode must be 'zeros', 'border' or 'reflection', got '${String(o.paddingMode)}'`);
  return T(native.gridSample(x.handle, grid.handle, mode, padding, o.alignCorners ?? false));
}
/** The sampling grid [N, H, W, 2] of affine matrices theta [N, 2, 3] for an output of size [N, C, H, W], as F.affine_grid. */
export const affineGrid = (theta: Tensor, size: number[], alignCorners = false): Tensor =>
  T(native.affineGrid(theta.handle, size, alignCorners));

// activations
export const relu = (x: Tensor): Tensor => (shapeOnly(x) ? metaLike(x) : T(native.relu(x.handle)));
export const relu6 = (x: Tensor): Tensor => (shapeOnly(x) ? metaLike(x) : T(native.relu6(x.handle)));
export const hardtanh = (x: Tensor, min = -1, max = 1): Tensor => (shapeOnly(x) ? metaLike(x) : T(native.hardtanh(x.handle, min, max)));
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor => T(native.leakyRelu(x.handle, negativeSlope));
export const elu = (x: Tensor, alpha = 1): Tensor => T(native.elu(x.handle, alpha));
export const silu = (x: Tensor): Tensor => T(native.silu(x.handle));
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => T(native.gelu(x.handle, approximate));
export const sigmoid = (x: Tensor): Tensor => T(native.sigmoid(x.handle));
export const tanh = (x: Tensor): Tensor => T(native.tanh(x.handle));
export const hardswish = (x: Tensor): Tensor => (shapeOnly(x) ? metaLike(x) : T(native.hardswish(x.handle)));
export const hardsigmoid = (x: Tensor): Tensor => T(native.hardsigmoid(x.handle));
export const softplus = (x: Tensor, beta = 1, threshold = 20): Tensor => T(native.softplus(x.handle, beta, threshold));
export const mish = (x: Tensor): Tensor => T(native.mish(x.handle));
export const softmax = (x: Tensor, dim: number): Tensor => T(native.softmax(x.handle, dim));
export const logSoftmax = (x: Tensor, dim: number): Tensor => T(native.logSoftmax(x.handle, dim));

// regularisers and lookup
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return T(native.dropout(x.handle, p, training));
}
/** Zeroes whole channels (nn.Dropout2d). */
export function dropout2d(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout2d: p must be in [0, 1], got ${p}`);
  return T(native.featureDropout(x.handle, p, training));
}
export const embedding = (indices: Tensor, weight: Tensor, paddingIdx?: number): Tensor =>
  shapeOnly(indices) ? metaEmbedding(indices, weight) : T(native.embedding(weight.handle, indices.handle, paddingIdx));

// losses
export interface CrossEntropyOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}
/** Cross entropy over logits; the target holds class indices (int64) or class probabilities (soft targets). */
export function crossEntropy(input: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const ls = o.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${ls}`);
  return T(native.crossEntropy(input.handle, target.handle, h(o.weight), reduction(o.reduction), o.ignoreIndex ?? -100, ls));
}
export const nllLoss = (input: Tensor, target: Tensor, o: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor =>
  T(native.nllLoss(input.handle, target.handle, h(o.weight), reduction(o.reduction), o.ignoreIndex ?? -100));
export const mseLoss = (input: Tensor, target: Tensor, r?: Reduction): Tensor => T(native.mseLoss(input.handle, target.handle, reduction(r)));
export const l1Loss = (input: Tensor, target: Tensor, r?: Reduction): Tensor => T(native.l1Loss(input.handle, target.handle, reduction(r)));
export const smoothL1Loss = (input: Tensor, target: Tensor, r?: Reduction, beta = 1): Tensor => T(native.smoothL1Loss(input.handle, target.handle, reduction(r), beta));
export const binaryCrossEntropyWithLogits = (input: Tensor, target: Tensor, o: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor =>
  T(native.bceWithLogits(input.handle, target.handle, h(o.weight), h(o.posWeight), reduction(o.reduction)));
export const klDiv = (input: Tensor, target: Tensor, r: Reduction | 'batchmean' = 'mean', logTarget = false): Tensor => {
  if (r === 'batchmean') {
    const s = T(native.klDiv(input.handle, target.handle, REDUCTION.sum, logTarget));
    const out = s.div(input.size(0));
    s.dispose();
    return out;
  }
  return T(native.klDiv(input.handle, target.handle, reduction(r), logTarget));
};

// recurrent kernels over PyTorch's flat weight list (w_ih, w_hh, b_ih, b_hh per layer and direction)
export interface RecurrentOptions {
  hasBiases: boolean;
  numLayers: number;
  dropout: number;
  training: boolean;
  bidirectional: boolean;
  batchFirst: boolean;
}
const rnnArgs = (o: RecurrentOptions): [boolean, number, number, boolean, boolean, boolean] =>
  [o.hasBiases, o.numLayers, o.dropout, o.training, o.bidirectional, o.batchFirst];
/** Returns [output, hN, cN]. */
export function lstm(x: Tensor, hx: [Tensor, Tensor], weights: Tensor[], o: RecurrentOptions): [Tensor, Tensor, Tensor] {
  const r = native.lstm(x.handle, [hx[0].handle, hx[1].handle], weights.map((w) => w.handle), ...rnnArgs(o));
  return [T(r[0]), T(r[1]), T(r[2])];
}
/** Returns [output, hN] for mode 'gru', 'rnn_tanh' or 'rnn_relu'. */
export function recurrent(mode: 'gru' | 'rnn_tanh' | 'rnn_relu', x: Tensor, hx: Tensor, weights: Tensor[], o: RecurrentOptions): [Tensor, Tensor] {
  const fn = mode === 'gru' ? native.gru : mode === 'rnn_tanh' ? native.rnnTanh : native.rnnRelu;
  const r = fn(x.handle, hx.handle, weights.map((w) => w.handle), ...rnnArgs(o));
  return [T(r[0]), T(r[1])];
}

// multi-tensor updates: one native call per parameter list, as torch.optim's foreach path
const hs = (ts: Tensor[]): Handle[] => ts.map((t) => t.handle);
export const foreach = {
  add_: (a: Tensor[], b: Tensor[], alpha = 1): void => native.foreachAdd_(hs(a), hs(b), alpha),
  addScalar_: (a: Tensor[], s: number): void => native.foreachAddScalar_(hs(a), s),
  mulScalar_: (a: Tensor[], s: number): void => native.foreachMulScalar_(hs(a), s),
  addcmul_: (a: Tensor[], b: Tensor[], c: Tensor[], value = 1): void => native.foreachAddcmul_(hs(a), hs(b), hs(c), value),
  addcdiv_: (a: Tensor[], b: Tensor[], c: Tensor[], value = 1): void => native.foreachAddcdiv_(hs(a), hs(b), hs(c), value),
  zero_: (a: Tensor[]): void => native.foreachZero_(hs(a)),
  sqrt: (a: Tensor[]): Tensor[] => native.foreachSqrt(hs(a)).map(T),
  norm: (a: Tensor[], p = 2): Tensor[] => native.foreachNorm(hs(a), p).map(T),
  // out-of-place forms return new tensors; `scalars` lists give one number per tensor
  add: (a: Tensor[], b: Tensor[], alpha = 1): Tensor[] => native.foreachAdd(hs(a), hs(b), alpha).map(T),
  addScalar: (a: Tensor[], s: number): Tensor[] => native.foreachAddScalar(hs(a), s).map(T),
  sub_: (a: Tensor[], b: Tensor[], alpha = 1): void => native.foreachSub_(hs(a), hs(b), alpha),
  sub: (a: Tensor[], b: Tensor[], alpha = 1): Tensor[] => native.foreachSub(hs(a), hs(b), alpha).map(T),
  mul: (a: Tensor[], b: Tensor[]): Tensor[] => native.foreachMul(hs(a), hs(b)).map(T),
  /** Multiplies every tensor by a one-element tensor (no host sync, unlike item()). */
  mulTensor_: (a: Tensor[], s: Tensor): void => native.foreachMulTensor_(hs(a), s.handle),
  divScalarList_: (a: Tensor[], scalars: number[]): void => native.foreachDivScalarList_(hs(a), scalars),
  addcmul: (a: Tensor[], b: Tensor[], c: Tensor[], value = 1): Tensor[] => native.foreachAddcmul(hs(a), hs(b), hs(c), value).map(T),
  addcdivScalarList_: (a: Tensor[], b: Tensor[], c: Tensor[], scalars: number[]): void =>
    native.foreachAddcdivScalarList_(hs(a), hs(b), hs(c), scalars),
  maximum_: (a: Tensor[], b: Tensor[]): void => native.foreachMaximum_(hs(a), hs(b)),
  neg: (a: Tensor[]): Tensor[] => native.foreachNeg(hs(a)).map(T),
  sqrt_: (a: Tensor[]): void => native.foreachSqrt_(hs(a)),
  copy_: (dst: Tensor[], src: Tensor[]): void => native.foreachCopy_(hs(dst), hs(src)),
  clamp_: (a: Tensor[], min?: number, max?: number): void => native.foreachClamp_(hs(a), min, max),
  /**
   * torch.optim.SGD's update in one pass per parameter, no temporaries. `bufs`: the momentum
   * buffers, [] without momentum; `init`: they are new and start at the (decayed) gradient.
   */
  sgdStep_: (params: Tensor[], grads: Tensor[], bufs: Tensor[], o: SgdStepOptions): void =>
    native.sgdStep_(hs(params), hs(grads), hs(bufs), o.lr, o.momentum, o.dampening, o.weightDecay, o.nesterov, o.maximize, o.init),
  /**
   * torch.optim.Adam's (AdamW's with `decoupled`) update in one pass per parameter. Per parameter:
   * stepSizes = -lr / (1 - beta1^step), bc2Sqrts = sqrt(1 - beta2^step); `maxExpAvgSqs`: [] without AMSGrad.
   */
  adamStep_: (params: Tensor[], grads: Tensor[], state: AdamStepState, o: AdamStepOptions): void =>
    native.adamStep_(hs(params), hs(grads), hs(state.expAvgs), hs(state.expAvgSqs), hs(state.maxExpAvgSqs), o.stepSizes, o.bc2Sqrts,
      [o.lr, o.beta1, o.beta2, o.eps, o.weightDecay], o.decoupled, o.maximize),
  /** RMSprop's update (PyTorch's, or TensorFlow's with `tfStyle`) in one pass per parameter. */
  rmspropStep_: (params: Tensor[], grads: Tensor[], state: RMSpropStepState, o: RMSpropStepOptions): void =>
    native.rmspropStep_(hs(params), hs(grads), hs(state.squareAvgs), hs(state.gradAvgs), hs(state.bufs),
      [o.lr, o.alpha, o.eps, o.weightDecay, o.momentum], o.decoupled, o.maximize, o.tfStyle, o.lrInMomentum),
};

export interface AdamStepState { expAvgs: Tensor[]; expAvgSqs: Tensor[]; maxExpAvgSqs: Tensor[] }
export interface AdamStepOptions {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean; maximize: boolean;
  stepSizes: number[]; bc2Sqrts: number[];
}

/** gradAvgs: [] unless centered; bufs: [] without momentum. */
export interface RMSpropStepState { squareAvgs: Tensor[]; gradAvgs: Tensor[]; bufs: Tensor[] }
export interface RMSpropStepOptions {
  lr: number; alpha: number; eps: number; weightDecay: number; momentum: number;
  decoupled: boolean; maximize: boolean; tfStyle: boolean; lrInMomentum: boolean;
}

export interface SgdStepOptions {
  lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean; maximize: boolean; init: boolean;
}
