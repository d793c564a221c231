// chain()'s look-ahead. For inference: a Conv2d followed by a BatchNorm2d, a residual addition
// and an activation runs as one fused convolution (engine/fused.ts) when nothing records
// autograd history and every module involved is in eval mode with no hooks watching it. The
// modules stay as they are: the fold is a cache beside the Conv2d, redone when its tensors
// change, so training, state dicts and export see the model the user built. For training: a
// BatchNorm2d followed by a residual addition and/or a ReLU runs as one batch norm that takes
// them into its own passes (native/batch_norm.cc).
import { F, FusedConv, fusedInferenceActive, type FusedActivation, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { Conv2d } from './conv.js';
import { BatchNorm2d } from './norm.js';
import { GELU, Hardswish, ReLU, ReLU6, Sigmoid, SiLU, Tanh } from './activation.js';

type Layer = Module<[Tensor], Tensor>;
type Step = Layer | ((t: Tensor) => Tensor);

/** The step that ends a residual block (container.ts addShortcut), marked so a fused convolution can take the addition in. */
export interface ResidualStep {
  (out: Tensor): Tensor;
  readonly residual: { x: Tensor; shortcut: Layer | null };
}

const ACTIVATIONS = new Map<unknown, FusedActivation>([
  [ReLU, 'relu'], [ReLU6, 'relu6'], [SiLU, 'silu'], [Sigmoid, 'sigmoid'], [Hardswish, 'hardswish'], [Tanh, 'tanh'],
]);
const ACTIVATION_FUNCTIONS = new Map<unknown, FusedActivation>([[F.relu, 'relu'], [F.silu, 'silu'], [F.sigmoid, 'sigmoid']]);

const idle = (m: Module<never[], unknown>): boolean => !m.training && !m.hasForwardHooks;

/** The activation a step computes, if it may be fused: no hooks, and in eval mode unless `training`. */
function activationOf(step: Step | undefined, training = false): FusedActivation | null {
  if (step === undefined) return null;
  const free = step instanceof Module && !step.hasForwardHooks && (training || !step.training);
  if (step instanceof GELU) return free ? (step.approximate === 'tanh' ? 'gelu_tanh' : 'gelu') : null;
  if (step instanceof Module) return free ? ACTIVATIONS.get(step.constructor) ?? null : null;
  return ACTIVATION_FUNCTIONS.get(step) ?? null;
}

function residualOf(step: Step | undefined): ResidualStep['residual'] | null {
  return step !== undefined && !(step instanceof Module) && 'residual' in step ? (step as ResidualStep).residual : null;
}

function foldableNorm(step: Step | undefined): BatchNorm2d | null {
  return step instanceof BatchNorm2d && idle(step) && step.buffer('running_mean') !== null ? step : null;
}

function padding(conv: Conv2d): [number, number, number, number] | null {
  if (conv.padding === 'valid') return [0, 0, 0, 0];
  if (conv.padding === 'same') return null;
  const [h, w] = conv.padding;
  return [h, w, h, w];
}

const cache = new WeakMap<Conv2d, Map<string, FusedConv>>();

function fusedFor(conv: Conv2d, pad: [number, number, number, number], activation: FusedActivation | null, residual: boolean): FusedConv {
  let byPattern = cache.get(conv);
  if (!byPattern) cache.set(conv, (byPattern = new Map()));
  const key = `${activation}|${residual}`;
  let fused = byPattern.get(key);
  if (!fused) {
    fused = new FusedConv({ stride: conv.stride, padding: pad, dilation: conv.dilation, groups: conv.groups, activation, residual });
    byPattern.set(key, fused);
  }
  return fused;
}

/** Identity of a residual step: its shortcut's output, or its block's input. */
const identityOf = (r: ResidualStep['residual']): Tensor => (r.shortcut ? r.shortcut.call(r.x) : r.x);

/** A training BatchNorm2d at steps[i] with the residual addition and the ReLU after it, as far as they are there. */
function normInTraining(norm: BatchNorm2d, steps: readonly Step[], i: number, x: Tensor): { out: Tensor; consumed: number } | null {
  const residual = residualOf(steps[i + 1]);
  const relu = activationOf(steps[i + (residual ? 2 : 1)], true) === 'relu';
  if (!residual && !relu) return null;
  const identity = residual ? identityOf(residual) : undefined;
  const out = norm.forwardFused(x, { residual: identity, relu });
  if (identity && residual && identity !== residual.x && !identity.kept) identity.dispose();
  return { out, consumed: 1 + (residual ? 1 : 0) + (relu ? 1 : 0) };
}

/**
 * Runs steps[i] and as many of the steps after it as one fused convolution takes in, on x.
 * Returns the result and how many steps it consumed, or null where the fused path does not apply.
 */
export function runFused(steps: readonly Step[], i: number, x: Tensor): { out: Tensor; consumed: number } | null {
  const first = steps[i];
  // BatchNorm2d's own forward: one replaced (SyncBatchNorm's) computes its statistics its own way
  if (first instanceof BatchNorm2d && first.forward === BatchNorm2d.prototype.forward && first.training && !first.hasForwardHooks) {
    return normInTraining(first, steps, i, x);
  }
  const conv = steps[i];
  if (!(conv instanceof Conv2d) || !idle(conv) || !fusedInferenceActive()) return null;
  if ((x.dtype !== 'float32' && x.dtype !== 'bfloat16') || x.ndim !== 4 || x.device !== 'cpu') return null;
  const pad = padding(conv);
  if (!pad) return null;
  let j = i + 1;
  const norm = foldableNorm(steps[j]);
  if (norm) j++;
  const residual = residualOf(steps[j]);
  if (residual) j++;
  const activation = activationOf(steps[j]);
  if (activation) j++;
  const identity = residual ? identityOf(residual) : undefined;
  const out = fusedFor(conv, pad, activation, residual !== null).run(x, {
    weight: conv.weight,
    bias: conv.bias,
    norm: norm && { weight: norm.weight, bias: norm.bias, runningMean: norm.buffer('running_mean')!, runningVar: norm.buffer('running_var')!, eps: norm.eps },
  }, identity);
  if (identity && residual && identity !== residual.x && !identity.kept) identity.dispose();
  return { out, consumed: j - i };
}
