// The layer an explanation looks at, and a forward pass that exposes it: the activation A of that
// layer as a leaf tensor (so backward leaves dScore/dA in A.grad) and the logits computed from it.
//
// The automatic target is the last convolutional stage: the output of forwardFeatures() for the
// zoo's classifiers (the map the head pools), else the last module call whose output is a
// [N, C, H, W] map larger than 1x1. A named target is a module path as in the state dict
// ('layer4', 'features.7.0'); a module called more than once per forward (a shared ReLU) is cut at
// its last call.
import { enableGrad, isTensor, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';

/** A classifier: an image batch in, logits (or, in training mode, logits and auxiliary outputs) out. */
export type ExplainModel = Module<[Tensor], Tensor | Tensor[]>;

export class ExplainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExplainError';
  }
}

interface FeatureModel {
  forwardFeatures(x: Tensor): Tensor;
  forwardHead(f: Tensor): Tensor;
}

function hasFeatureSplit(m: unknown): m is FeatureModel {
  const o = m as Partial<FeatureModel>;
  return typeof o.forwardFeatures === 'function' && typeof o.forwardHead === 'function';
}

export function logitsOf(out: Tensor | Tensor[]): Tensor {
  return Array.isArray(out) ? out[0] : out;
}

export interface CaptureResult {
  /** [N, classes] */
  logits: Tensor;
  /** the target layer's output, a leaf that requires grad (kept: the caller disposes it) */
  activation: Tensor;
  /** the module path of the target ('' for the whole model), or 'forwardFeatures' when no module returns that map */
  layer: string;
}

interface Call {
  name: string;
  index: number;
  /** compared by identity only: chain() may have freed it since */
  output: Tensor;
  /** read when the call finished */
  shape: number[];
}

/** Every module call of one forward pass with a tensor output, in the order the calls finished. */
function recordCalls(model: ExplainModel, run: () => void): Call[] {
  const calls: Call[] = [];
  const counts = new Map<string, number>();
  const removers = model.namedModules().map(([name, m]) => m.registerForwardHook((_m, _inputs, output) => {
    const index = counts.get(name) ?? 0;
    counts.set(name, index + 1);
    if (isTensor(output)) calls.push({ name, index, output, shape: output.shape });
  }));
  try {
    run();
  } finally {
    for (const r of removers) r();
  }
  return calls;
}

const isMap = (shape: number[]): boolean => shape.length === 4 && shape[2] * shape[3] > 1;

/** The module names of a model, for an error message: the top-level ones and those near `wanted`. */
function suggest(model: ExplainModel, wanted: string): string {
  const names = model.namedModules().map(([n]) => n).filter((n) => n !== '');
  const top = names.filter((n) => !n.includes('.'));
  const parent = wanted.includes('.') ? wanted.slice(0, wanted.lastIndexOf('.')) : null;
  const siblings = parent === null ? [] : names.filter((n) => n.startsWith(`${parent}.`) && !n.slice(parent.length + 1).includes('.'));
  const list = (a: string[]): string => (a.length > 24 ? `${a.slice(0, 24).join(', ')}, ... (${a.length} in all)` : a.join(', '));
  return siblings.length > 0 ? `modules under '${parent}' are ${list(siblings)}` : `its top-level modules are ${list(top)}`;
}

/** Checks that `path` names a module of the model; the module, or an error naming the choices. */
export function findModule(model: ExplainModel, path: string): Module<unknown[], unknown> {
  const found = model.namedModules().find(([n]) => n === path);
  if (!found) throw new ExplainError(`layer '${path}': the model has no module of that name; ${suggest(model, path)}`);
  return found[1];
}

/**
 * Runs the model on x with the graph cut at the target layer. Must run with grad enabled, the
 * model in eval mode.
 */
export function forwardWithCapture(model: ExplainModel, x: Tensor, layer?: string): CaptureResult {
  if (layer === undefined && hasFeatureSplit(model)) {
    let features: Tensor | null = null;
    const calls = recordCalls(model, () => { features = model.forwardFeatures(x); });
    const f = features as unknown as Tensor;
    if (f.ndim !== 4) throw new ExplainError(`the model's forwardFeatures returns shape [${f.shape.join(', ')}], not a [N, C, H, W] feature map`);
    // the outermost module whose output is that map finished last
    const name = [...calls].reverse().find((c) => c.output === f)?.name ?? 'forwardFeatures';
    const activation = f.detach().requiresGrad_(true).keep();
    try {
      return { logits: model.forwardHead(activation), activation, layer: name };
    } catch (e) {
      activation.dispose();
      throw e;
    }
  }
  let target: { name: string; index: number };
  if (layer === undefined) {
    // a first pass finds the last call with a spatial map
    const calls = recordCalls(model, () => { model.call(x); });
    const last = [...calls].reverse().find((c) => isMap(c.shape));
    if (!last) throw new ExplainError('the model has no layer with a [N, C, H, W] output larger than 1x1 at this input size: name one with --layer, or use a larger input');
    target = { name: last.name, index: last.index };
  } else {
    findModule(model, layer);
    const calls = recordCalls(model, () => { model.call(x); }).filter((c) => c.name === layer);
    if (calls.length === 0) throw new ExplainError(`layer '${layer}': the module is not called in the model's forward pass (or returns no tensor)`);
    const last = calls[calls.length - 1];
    if (last.shape.length !== 4) {
      throw new ExplainError(`layer '${layer}': its output has shape [${last.shape.join(', ')}], not a [N, C, H, W] feature map: name a convolutional layer or stage`);
    }
    target = { name: layer, index: last.index };
  }
  const module = findModule(model, target.name);
  let seen = 0;
  let activation: Tensor | null = null;
  const remove = module.registerForwardReplaceHook((_m, _inputs, output) => {
    if (seen++ !== target.index) return undefined;
    activation = (output as Tensor).detach().requiresGrad_(true).keep();
    return activation;
  });
  try {
    const logits = logitsOf(model.call(x));
    if (activation === null) throw new ExplainError(`layer '${target.name}': the module did not run in the second forward pass`);
    return { logits, activation, layer: target.name };
  } catch (e) {
    (activation as Tensor | null)?.dispose();
    throw e;
  } finally {
    remove();
  }
}

/**
 * Runs fn with grad enabled, the model in eval mode and its parameters not requiring grad (an
 * explanation's backward must not write into the parameters' .grad), restoring all afterwards.
 */
export function withExplainMode<T>(model: ExplainModel, fn: () => T): T {
  const modes = model.modules().map((m) => [m, m.training] as const);
  const params = model.parameters().map((p) => [p, p.requiresGrad] as const);
  model.eval();
  for (const [p] of params) p.requiresGrad = false;
  try {
    return enableGrad(fn);
  } finally {
    for (const [m, t] of modes) m.training = t;
    for (const [p, r] of params) p.requiresGrad = r;
  }
}
