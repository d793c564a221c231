// A channel-pruned model's architecture: the registered model as built, with some layers
// narrower. The description is the model option `prunedLayers` (module path -> its new sizes),
// so it travels in every file that already records a model's options (a training checkpoint's
// recipe, model.safetensors' convkit_model_options, an ONNX file's metadata) and createModel
// rebuilds the smaller model wherever a checkpoint becomes a model: train, eval, export, predict.
import { noGrad, zeros, type Tensor } from '../engine/index.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Linear, Parameter, ZeroPadChannels, type Module } from '../nn/index.js';

/**
 * Module path -> sizes: a Conv2d [inChannels, outChannels, groups], a Linear [inFeatures,
 * outFeatures], a BatchNorm2d/1d [numFeatures], a ZeroPadChannels [front, back].
 */
export type PrunedLayers = Record<string, number[]>;

type AnyModule = Module<unknown[], unknown>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The sizes a layer has now, in PrunedLayers' form; null for a layer pruning does not resize. */
export function layerSizes(m: AnyModule): number[] | null {
  if (m instanceof Conv2d) return [m.inChannels, m.outChannels, m.groups];
  if (m instanceof Linear) return [m.inFeatures, m.outFeatures];
  if (m instanceof BatchNorm2d || m instanceof BatchNorm1d) return [m.numFeatures];
  if (m instanceof ZeroPadChannels) return [m.front, m.back];
  return null;
}

const count = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/** Checks a description read from a file before anything is built from it. */
export function checkPrunedLayers(v: unknown, where: string): PrunedLayers {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: prunedLayers must be an object of module path -> sizes, got ${JSON.stringify(v)?.slice(0, 80)}`);
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
    if (!Array.isArray(s) || s.length < 1 || s.length > 3 || !s.every(count)) {
      throw new Error(`${where}: prunedLayers['${k.slice(0, 80)}'] must be 1 to 3 whole numbers, got ${JSON.stringify(s)?.slice(0, 80)}`);
    }
  }
  return v as PrunedLayers;
}

/**
 * Narrows the layers `layers` names, in place: their parameters and buffers are replaced by
 * zero tensors of the new shapes (the caller loads or copies the weights next) and
 * their size fields follow. Layers only shrink; a path the model lacks, a layer of another kind
 * or a larger size means the description is of another model, and nothing is changed then.
 */
export function applyPrunedLayers(model: AnyModule, layers: PrunedLayers, where = 'prunedLayers'): void {
  checkPrunedLayers(layers, where);
  const mods = new Map(model.namedModules());
  const plan: (() => void)[] = [];
  for (const [path, sizes] of Object.entries(layers)) {
    const m = mods.get(path);
    const now = m ? layerSizes(m) : null;
    if (!m || !now) {
      throw new Error(`${where}: the model has no ${m ? 'Conv2d, Linear, BatchNorm or ZeroPadChannels' : 'module'} '${path}' (${m ? m.typeName : 'not found'}): the description is of another model`);
    }
    if (sizes.length !== now.length) throw new Error(`${where}: '${path}' is a ${m.typeName}, whose sizes are ${now.length} numbers, got [${sizes.join(', ')}]`);
    // a pad may drop all its zero channels; a layer keeps at least one
    if (!(m instanceof ZeroPadChannels) && sizes.includes(0)) throw new Error(`${where}: '${path}' is a ${m.typeName}, whose sizes must be positive, got [${sizes.join(', ')}]`);
    if (sizes.some((s, i) => s > now[i])) throw new Error(`${where}: '${path}' would grow from [${now.join(', ')}] to [${sizes.join(', ')}]: the description is of another model`);
    if (m instanceof Conv2d) {
      const [cin, cout, g] = sizes;
      if (cin % g !== 0 || cout % g !== 0) throw new Error(`${where}: '${path}': inChannels ${cin} and outChannels ${cout} must both be divisible by groups ${g}`);
      plan.push(() => resizeConv(m, cin, cout, g));
    } else if (m instanceof Linear) plan.push(() => resizeLinear(m, sizes[0], sizes[1]));
    else if (m instanceof ZeroPadChannels) plan.push(() => Object.assign(m as Mutable<ZeroPadChannels>, { front: sizes[0], back: sizes[1] }));
    else plan.push(() => resizeNorm(m as BatchNorm2d, sizes[0]));
  }
  for (const p of plan) p();
}

function replaceParam(p: Parameter | null, shape: number[]): Parameter | null {
  if (!p) return null;
  const next = new Parameter(zeros(shape, { dtype: p.dtype, device: p.device }), p.requiresGrad);
  p.dispose();
  return next;
}

function resizeConv(m: Conv2d, cin: number, cout: number, groups: number): void {
  const [kh, kw] = m.kernelSize;
  m.weight = replaceParam(m.weight, [cout, cin / groups, kh, kw])!;
  m.bias = replaceParam(m.bias, [cout]);
  Object.assign(m as Mutable<Conv2d>, { inChannels: cin, outChannels: cout, groups });
}

function resizeLinear(m: Linear, fin: number, fout: number): void {
  m.weight = replaceParam(m.weight, [fout, fin])!;
  m.bias = replaceParam(m.bias, [fout]);
  Object.assign(m as Mutable<Linear>, { inFeatures: fin, outFeatures: fout });
}

function resizeNorm(m: BatchNorm2d | BatchNorm1d, n: number): void {
  m.weight = replaceParam(m.weight, [n]);
  m.bias = replaceParam(m.bias, [n]);
  for (const [name, b] of m.ownBuffers()) {
    if (b.ndim !== 1) continue; // num_batches_tracked
    m.registerBuffer(name, noGrad(() => zeros([n], { dtype: b.dtype, device: b.device })));
    b.dispose();
  }
  Object.assign(m as Mutable<BatchNorm2d>, { numFeatures: n });
}

/** The description of how `model` differs from `base` (the same registered model as built). */
export function diffLayers(model: AnyModule, base: AnyModule): PrunedLayers {
  const baseMods = new Map(base.namedModules());
  const out: PrunedLayers = {};
  for (const [path, m] of model.namedModules()) {
    const now = layerSizes(m);
    const b = baseMods.get(path);
    const was = b ? layerSizes(b) : null;
    if (now && was && now.some((s, i) => s !== was[i])) out[path] = now;
  }
  return out;
}

/** Copies `values` (path -> tensor of the new shape) into a model narrowed by applyPrunedLayers. */
export function copyInto(model: AnyModule, values: Map<string, Tensor>): void {
  const sd = model.stateDict();
  noGrad(() => {
    for (const [k, v] of values) {
      const t = sd.get(k);
      if (!t) throw new Error(`copyInto: the model has no tensor '${k}'`);
      t.copy_(v);
    }
  });
}
