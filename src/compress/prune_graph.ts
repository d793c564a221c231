// Which channels must be pruned together, worked out from the traced forward pass (DepGraph,
// Fang et al., CVPR 2023), with no per-family rules.
//
// Every channel a layer makes is an "atom". Running through the engine ops of one traced pass,
// each tensor carries the atoms along its channel dimension (dim 1 of a feature map, the last
// dim of a Linear's input and output): elementwise ops and pooling pass them on, a residual add
// or an SE gate's multiply unites the atoms it lines up, a concatenation along the channels
// joins the lists, a flatten repeats each channel's atom over its H x W features, a depthwise
// convolution unites each output channel with its input channel, and the zero channels a
// ZeroPadChannels layer adds are atoms that no layer makes. Atoms that end up united are one
// prunable unit: removing it removes that output channel from every layer that makes it, that
// input channel (or flattened features) from every layer that reads it, and that zero channel
// from the pad that adds it. Whatever the rules do not understand (a reshape that mixes
// channels, a slice along them, a channel-indexed constant, attention, grouped convolutions, the
// graph's inputs and outputs) freezes the atoms it touches, so an unknown construct is left
// whole rather than broken.
import { enableGrad, tidy, type Tensor } from '../engine/index.js';
import { disposeTrace, traceOps, TraceError, type Trace, type TracedOp } from '../engine/trace.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Linear, withModulePaths, ZeroPadChannels, type Module } from '../nn/index.js';

type AnyModule = Module<unknown[], unknown>;

export class PruneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PruneError';
  }
}

/** One call of a layer pruning resizes, with the atom of each channel it makes or reads. */
export interface LayerUse {
  kind: 'conv' | 'linear' | 'bn';
  path: string;
  module: Conv2d | Linear | BatchNorm2d | BatchNorm1d;
  /** conv/linear: the atom of each output channel; bn: of each channel */
  out: Int32Array;
  /** conv: of each input channel; linear: of each input feature; bn: null */
  in: Int32Array | null;
  /** output positions per sample per channel (H x W of a conv's output, rows of a Linear) */
  positions: number;
  /** the eval-mode forward runs this call (false for auxiliary heads only training runs): it counts in the MACs */
  inEval: boolean;
}

/** One call of a ZeroPadChannels layer: the atoms of the zero channels it adds before and after. */
export interface PadUse {
  path: string;
  module: ZeroPadChannels;
  front: Int32Array;
  back: Int32Array;
}

/** A unit of channels pruned together: the atoms united, and where each sits. */
export interface Unit {
  id: number;
  /** output channels it removes: [use index, channel] */
  produced: [number, number][];
  /** the group it belongs to (units made by the same layers) */
  group: number;
}

export interface Group {
  id: number;
  /** the layers whose output channels the group's units are: 'layer1.0.conv2 + layer1.1.conv2 + ...' */
  label: string;
  units: number[];
}

export interface DependencyGraph {
  uses: LayerUse[];
  /** the ZeroPadChannels layers whose zero channels may go with the units they are tied to */
  pads: PadUse[];
  /** root atom -> unit, for prunable atoms */
  unitOf: (atom: number) => number;
  units: Unit[];
  groups: Group[];
  /** layers whose channels are all frozen (kept whole), for reports */
  frozenLayers: string[];
}

/** Atoms with a union-find and a frozen flag per root. */
class Atoms {
  readonly parent: number[] = [];
  readonly frozen: boolean[] = [];
  make(n: number, frozen = false): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = this.parent.length;
      this.parent.push(this.parent.length);
      this.frozen.push(frozen);
    }
    return a;
  }
  find(a: number): number {
    let r = a;
    while (this.parent[r] !== r) r = this.parent[r];
    while (this.parent[a] !== r) {
      const next = this.parent[a];
      this.parent[a] = r;
      a = next;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    this.parent[rb] = ra;
    this.frozen[ra] = this.frozen[ra] || this.frozen[rb];
  }
  freeze(list: ArrayLike<number>): void {
    for (let i = 0; i < list.length; i++) this.frozen[this.find(list[i])] = true;
  }
  isFrozen(a: number): boolean {
    return this.frozen[this.find(a)];
  }
}

/** A tensor's channel dimension and the atom of each index along it. */
interface Channels {
  dim: number;
  atoms: Int32Array;
}

const PASS_THROUGH = new Set([
  'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'floor', 'ceil', 'sign', 'sin', 'cos', 'erf',
  'relu', 'relu6', 'sigmoid', 'tanh', 'silu', 'hardswish', 'hardsigmoid', 'mish', 'hardtanh', 'leakyRelu', 'elu', 'gelu', 'softplus', 'clamp',
  'relu_', 'to', 'contiguous', 'clone', 'detach', 'dropout', 'featureDropout', 'logicalNot',
  'addScalar', 'subScalar', 'rsubScalar', 'mulScalar', 'divScalar', 'powScalar', 'addScalar_', 'mulScalar_', 'divScalar_',
  'eqScalar', 'neScalar', 'ltScalar', 'leScalar', 'gtScalar', 'geScalar', 'softmax', 'logSoftmax',
]);
const BROADCAST = new Set(['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'add_', 'sub_', 'mul_', 'div_', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'where', 'maskedFill']);
const SPATIAL = new Set(['maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d', 'adaptiveMaxPool2d', 'interpolate']);
const RESHAPE = new Set(['reshape', 'view', 'flatten', 'unflatten', 'squeeze', 'unsqueeze']);
const REDUCE = new Set(['sum', 'mean', 'amax', 'amin', 'argmax']);

const normDim = (d: number, rank: number): number => (d < 0 ? d + rank : d);

/**
 * Traces model on `example` (one eval-mode pass, autograd on so that no fused path hides the
 * layers) and returns the trace. `trainMode`: the pass runs in training mode except for leaf
 * modules without parameters (dropout, drop-path), so auxiliary heads that only training runs
 * are seen too.
 */
function traceModel(model: AnyModule, example: Tensor, trainMode: boolean): Trace {
  const modes = model.modules().map((m) => [m, m.training] as const);
  try {
    model.eval();
    if (trainMode) {
      for (const m of model.modules()) {
        const leafWithoutState = m.children().length === 0 && m.ownParameters().length === 0 && m.ownBuffers().length === 0;
        m.training = !leafWithoutState;
      }
    }
    const constants: [string, Tensor][] = [...model.namedParameters().map(([k, p]) => [k, p] as [string, Tensor]), ...model.namedBuffers()];
    return withModulePaths(model, (scope) => enableGrad(() => tidy(() => {
      const { trace } = traceOps(() => (model as unknown as Module<[Tensor], unknown>).call(example), { inputs: [example], constants, scope });
      return trace;
    })));
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/**
 * The dependency graph of `model` for input `example` (a batch: [N, C, H, W]). Throws a
 * PruneError for models whose layers cannot be told apart from the trace (a forward that cannot
 * be traced, layers that never run).
 */
export function buildDependencyGraph(model: AnyModule, example: Tensor): DependencyGraph {
  const resizable = model.namedModules().filter(([, m]) => m instanceof Conv2d || m instanceof Linear || m instanceof BatchNorm2d || m instanceof BatchNorm1d);
  if (!resizable.some(([, m]) => m instanceof Conv2d)) throw new PruneError(`${model.typeName} has no Conv2d layer: channel pruning needs a convolutional model`);
  let trace: Trace;
  try {
    trace = traceModel(model, example, false);
  } catch (e) {
    if (e instanceof TraceError) throw new PruneError(`cannot trace ${model.typeName} to find its coupled channels: ${e.message}`);
    throw e;
  }
  let g = analyse(model, trace);
  disposeTrace(trace);
  const seen = new Set(g.uses.map((u) => u.path));
  let unseen = resizable.filter(([p, m]) => !seen.has(p) && m.ownParameters().length > 0).map(([p]) => p);
  if (unseen.length > 0) {
    // layers only training runs (auxiliary classifiers): trace the training-mode pass as well
    let why = '';
    try {
      const t2 = traceModel(model, example, true);
      const evalCalls = new Map<string, number>();
      for (const u of g.uses) evalCalls.set(u.path, (evalCalls.get(u.path) ?? 0) + 1);
      g = analyse(model, t2);
      disposeTrace(t2);
      const calls = new Map<string, number>();
      for (const u of g.uses) {
        const k = (calls.get(u.path) ?? 0) + 1;
        calls.set(u.path, k);
        u.inEval = k <= (evalCalls.get(u.path) ?? 0);
      }
      unseen = unseen.filter((p) => !calls.has(p));
    } catch (e) {
      why = ` (the training-mode pass that would run them failed: ${(e as Error).message})`;
    }
    if (unseen.length > 0) {
      throw new PruneError(`${model.typeName}: layers ${unseen.slice(0, 5).join(', ')}${unseen.length > 5 ? ', ...' : ''} never run in an eval-mode forward pass, so which channels they read is unknown${why}; build the model without them`);
    }
  }
  return g;
}

function analyse(model: AnyModule, trace: Trace): DependencyGraph {
  const atoms = new Atoms();
  const chans = new Map<number, Channels>();
  const mods = new Map(model.namedModules());
  const uses: LayerUse[] = [];
  const pads: PadUse[] = [];
  const firstUse = new Map<string, LayerUse>();
  const firstPad = new Map<string, PadUse>();
  const valueOf = (id: number): Trace['values'][number] => trace.values[id];
  const rank = (id: number): number => valueOf(id).shape.length;

  const fresh = (id: number, frozen: boolean): void => {
    const s = valueOf(id).shape;
    if (s.length >= 2) chans.set(id, { dim: 1, atoms: atoms.make(s[1], frozen) });
  };
  for (const id of trace.inputs) fresh(id, true);

  const freezeInputs = (op: TracedOp): void => {
    for (const i of op.inputs) for (const id of Array.isArray(i) ? i : i === null ? [] : [i]) {
      const c = chans.get(id);
      if (c) atoms.freeze(c.atoms);
    }
  };
  const unknown = (op: TracedOp): void => {
    freezeInputs(op);
    for (const o of op.outputs) fresh(o, true);
  };
  const layerModule = (constId: number | null, suffix: string): [string, AnyModule] | null => {
    if (constId === null) return null;
    const v = valueOf(constId);
    if (v.kind !== 'constant' || !v.name.endsWith(suffix)) return null;
    const path = v.name.slice(0, v.name.length - suffix.length);
    const m = mods.get(path);
    return m ? [path, m] : null;
  };
  const unite = (path: string, u: LayerUse): void => {
    const first = firstUse.get(path);
    if (!first) {
      firstUse.set(path, u);
      return;
    }
    // a layer called twice: its channels are the same channels in both calls
    first.out.forEach((a, i) => atoms.union(a, u.out[i]));
    if (first.in && u.in) first.in.forEach((a, i) => atoms.union(a, u.in![i]));
  };

  for (const op of trace.ops) {
    const x = typeof op.inputs[0] === 'number' ? op.inputs[0] : null;
    const xc = x === null ? undefined : chans.get(x);
    const out = op.outputs[0];
    const name = op.op;
    if (PASS_THROUGH.has(name) || SPATIAL.has(name)) {
      if (xc) for (const o of op.outputs) chans.set(o, xc);
      continue;
    }
    if (BROADCAST.has(name)) {
      broadcast(op);
      continue;
    }
    if (name === 'conv2d') {
      const lm = layerModule(op.inputs[1] as number, '.weight');
      const m = lm?.[1];
      const w = valueOf(op.inputs[1] as number);
      if (!lm || !(m instanceof Conv2d) || m.weight !== w.tensor || !xc || xc.dim !== 1) {
        unknown(op);
        continue;
      }
      const oshape = valueOf(out).shape;
      const cin = xc.atoms.length;
      const cout = oshape[1];
      const outAtoms = atoms.make(cout, !m.weight.requiresGrad);
      const g = m.groups;
      if (g > 1) {
        if (g === cin && cout % cin === 0) {
          // depthwise: output channel i*k+j reads input channel i alone
          const k = cout / cin;
          for (let i = 0; i < cin; i++) for (let j = 0; j < k; j++) atoms.union(xc.atoms[i], outAtoms[i * k + j]);
        } else {
          atoms.freeze(xc.atoms);
          atoms.freeze(outAtoms);
        }
      }
      if (!m.weight.requiresGrad) atoms.freeze(xc.atoms); // a fixed layer (airbench's whitening) stays whole
      const u: LayerUse = { kind: 'conv', path: lm[0], module: m, out: outAtoms, in: xc.atoms, positions: oshape[2] * oshape[3], inEval: true };
      uses.push(u);
      unite(lm[0], u);
      chans.set(out, { dim: 1, atoms: outAtoms });
      continue;
    }
    if (name === 'linear') {
      const lm = layerModule(op.inputs[1] as number, '.weight');
      const m = lm?.[1];
      const w = valueOf(op.inputs[1] as number);
      const r = x === null ? 0 : rank(x);
      if (!lm || !(m instanceof Linear) || m.weight !== w.tensor || !xc || xc.dim !== r - 1) {
        unknown(op);
        continue;
      }
      const oshape = valueOf(out).shape;
      const outAtoms = atoms.make(oshape[oshape.length - 1], !m.weight.requiresGrad);
      if (!m.weight.requiresGrad) atoms.freeze(xc.atoms);
      const positions = oshape.slice(1, -1).reduce((a, b) => a * b, 1);
      const u: LayerUse = { kind: 'linear', path: lm[0], module: m, out: outAtoms, in: xc.atoms, positions, inEval: true };
      uses.push(u);
      unite(lm[0], u);
      chans.set(out, { dim: oshape.length - 1, atoms: outAtoms });
      continue;
    }
    if (name === 'batchNorm') {
      const named = (op.inputs.slice(1) as (number | null)[]).find((id) => id !== null && valueOf(id).kind === 'constant' && valueOf(id).name !== '');
      const v = named === undefined || named === null ? null : valueOf(named);
      const path = v ? v.name.slice(0, v.name.lastIndexOf('.')) : '';
      const m = v ? mods.get(path) : undefined;
      if (!xc) continue;
      if (v && !(m instanceof BatchNorm2d || m instanceof BatchNorm1d)) {
        unknown(op);
        continue;
      }
      if (xc.dim !== 1) {
        unknown(op);
        continue;
      }
      if (m) {
        const u: LayerUse = { kind: 'bn', path, module: m as BatchNorm2d, out: xc.atoms, in: null, positions: 0, inEval: true };
        uses.push(u);
        unite(path, u);
      }
      chans.set(out, xc);
      continue;
    }
    if (RESHAPE.has(name)) {
      if (xc) reshape(op, xc);
      continue;
    }
    if (name === 'permute' || name === 'transpose') {
      if (!xc) continue;
      const r = rank(x!);
      let order: number[];
      if (name === 'permute') order = (op.attrs.order as number[]).map((d) => normDim(d, r));
      else {
        order = Array.from({ length: r }, (_, i) => i);
        const a = normDim(op.attrs.dim0 as number, r);
        const b = normDim(op.attrs.dim1 as number, r);
        [order[a], order[b]] = [order[b], order[a]];
      }
      chans.set(out, { dim: order.indexOf(xc.dim), atoms: xc.atoms });
      continue;
    }
    if (name === 'expand') {
      if (!xc) continue;
      const oshape = valueOf(out).shape;
      const d = xc.dim + oshape.length - rank(x!);
      if (oshape[d] === xc.atoms.length) chans.set(out, { dim: d, atoms: xc.atoms });
      continue;
    }
    if (name === 'pad') {
      if (!xc) continue;
      const padding = op.attrs.padding as number[];
      const r = rank(x!);
      const k = r - 1 - xc.dim; // pad pairs start at the last dimension
      const front = padding[2 * k] ?? 0;
      const back = padding[2 * k + 1] ?? 0;
      if (front === 0 && back === 0) {
        chans.set(out, xc);
        continue;
      }
      if (front < 0 || back < 0) {
        unknown(op); // cropping channels
        continue;
      }
      // new zero channels around the input's (the CIFAR ResNets' option-A shortcut). The input's
      // channels may go either way, since the amounts do not depend on how many there are
      // (pruneChannels runs the rebuilt model once to make sure). A ZeroPadChannels layer's
      // zeros may go too, with whatever they are added to: pruning changes its amounts. The
      // zeros of a pad inside some other forward are fixed.
      const padder = mods.get(op.scope);
      const own = padder instanceof ZeroPadChannels && padder.front === front && padder.back === back;
      const p: PadUse | null = own ? { path: op.scope, module: padder, front: atoms.make(front), back: atoms.make(back) } : null;
      const joined = new Int32Array(front + xc.atoms.length + back);
      joined.set(p ? p.front : atoms.make(front, true), 0);
      joined.set(xc.atoms, front);
      joined.set(p ? p.back : atoms.make(back, true), front + xc.atoms.length);
      chans.set(out, { dim: xc.dim, atoms: joined });
      if (p) {
        pads.push(p);
        const first = firstPad.get(p.path);
        if (first) {
          // called twice: the same zero channels
          first.front.forEach((a, i) => atoms.union(a, p.front[i]));
          first.back.forEach((a, i) => atoms.union(a, p.back[i]));
        } else firstPad.set(p.path, p);
      }
      continue;
    }
    if (['narrow', 'slice', 'select', 'chunk', 'split', 'splitWithSizes', 'flip', 'repeat', 'gather', 'indexSelect'].includes(name)) {
      if (!xc) continue;
      const r = rank(x!);
      const along = name === 'repeat' ? ((op.attrs.times as number[])[xc.dim + (op.attrs.times as number[]).length - r] ?? 1) !== 1
        : name === 'flip' ? (op.attrs.dims as number[]).map((d) => normDim(d, r)).includes(xc.dim)
          : normDim(op.attrs.dim as number, r) === xc.dim;
      if (along) {
        unknown(op);
        continue;
      }
      const removed = name === 'select' && normDim(op.attrs.dim as number, r) < xc.dim ? 1 : 0;
      for (const o of op.outputs) chans.set(o, { dim: xc.dim - removed, atoms: xc.atoms });
      continue;
    }
    if (REDUCE.has(name)) {
      if (!xc) continue;
      const r = rank(x!);
      const dimsAttr = op.attrs.dims ?? op.attrs.dim;
      const listed = dimsAttr === null || dimsAttr === undefined ? Array.from({ length: r }, (_, i) => i) : Array.isArray(dimsAttr) ? dimsAttr : [dimsAttr as number];
      const dims = listed.map((d) => normDim(d, r));
      if (dims.length === 0 || dims.includes(xc.dim)) {
        unknown(op);
        continue;
      }
      const keep = op.attrs.keepdim === true;
      chans.set(out, { dim: keep ? xc.dim : xc.dim - dims.filter((d) => d < xc.dim).length, atoms: xc.atoms });
      continue;
    }
    if (name === 'cat' || name === 'stack') {
      concat(op);
      continue;
    }
    unknown(op);
  }
  for (const id of trace.outputs) {
    const c = chans.get(id);
    if (c) atoms.freeze(c.atoms);
  }

  function broadcast(op: TracedOp): void {
    const out = op.outputs[0];
    const oshape = valueOf(out).shape;
    const ids = op.inputs.filter((i): i is number => typeof i === 'number');
    let dim = -1;
    let lined: Int32Array | null = null;
    let bad = false;
    for (const id of ids) {
      const v = valueOf(id);
      const shift = oshape.length - v.shape.length;
      const c = chans.get(id);
      if (v.kind === 'constant') continue;
      if (!c) {
        if (v.shape.some((s, i) => s > 1 && i + shift === 1)) bad = true;
        continue;
      }
      if (v.shape[c.dim] === 1) continue; // broadcast along the channels: nothing to line up
      const d = c.dim + shift;
      if (dim === -1) dim = d;
      if (d !== dim) bad = true;
      else if (lined) lined.forEach((a, i) => atoms.union(a, c.atoms[i]));
      else lined = c.atoms;
    }
    // a constant with one value per channel (a scale, a bias) would need slicing too
    for (const id of ids) {
      const v = valueOf(id);
      const shift = oshape.length - v.shape.length;
      if (v.kind === 'constant' && dim >= 0 && (v.shape[dim - shift] ?? 1) > 1) bad = true;
    }
    if (bad || !lined) {
      if (bad) unknown(op);
      else for (const o of op.outputs) fresh(o, true);
      return;
    }
    for (const o of op.outputs) chans.set(o, { dim, atoms: lined });
  }

  function reshape(op: TracedOp, xc: Channels): void {
    const ishape = valueOf(op.inputs[0] as number).shape;
    const out = op.outputs[0];
    const oshape = valueOf(out).shape;
    const before = ishape.slice(0, xc.dim).reduce((a, b) => a * b, 1);
    const c = ishape[xc.dim];
    const after = ishape.slice(xc.dim + 1).reduce((a, b) => a * b, 1);
    let prod = 1;
    for (let k = 0; k < oshape.length; k++) {
      if (prod === before) {
        // the dims before the channels are regrouped, the channels stay a dimension of their own
        if (oshape[k] === c) {
          chans.set(out, { dim: k, atoms: xc.atoms });
          return;
        }
        // the channels merged with every dimension after them (a flatten before a Linear)
        if (oshape[k] === c * after && k === oshape.length - 1) {
          const rep = new Int32Array(c * after);
          for (let i = 0; i < c; i++) rep.fill(xc.atoms[i], i * after, (i + 1) * after);
          chans.set(out, { dim: k, atoms: rep });
          return;
        }
      }
      prod *= oshape[k];
      if (prod > before) break;
    }
    unknown(op);
  }

  function concat(op: TracedOp): void {
    const list = op.inputs[0] as number[];
    const out = op.outputs[0];
    const oshape = valueOf(out).shape;
    const stack = op.op === 'stack';
    const r = valueOf(list[0]).shape.length;
    const d = normDim(op.attrs.dim as number, stack ? r + 1 : r);
    const cs = list.map((id) => chans.get(id) ?? (valueOf(id).shape.length >= 2 ? { dim: 1, atoms: atoms.make(valueOf(id).shape[1], true) } : null));
    if (cs.some((c) => !c) || cs.some((c) => c!.dim !== cs[0]!.dim)) {
      unknown(op);
      return;
    }
    const cd = cs[0]!.dim;
    if (!stack && d === cd) {
      const joined = new Int32Array(oshape[cd]);
      let at = 0;
      for (const c of cs) {
        joined.set(c!.atoms, at);
        at += c!.atoms.length;
      }
      chans.set(out, { dim: cd, atoms: joined });
      return;
    }
    for (const c of cs.slice(1)) c!.atoms.forEach((a, i) => atoms.union(cs[0]!.atoms[i], a));
    chans.set(out, { dim: stack && d <= cd ? cd + 1 : cd, atoms: cs[0]!.atoms });
  }

  return group(atoms, uses, pads);
}

/** Units (united prunable atoms) and groups (units made by the same layers). */
function group(atoms: Atoms, uses: LayerUse[], pads: PadUse[]): DependencyGraph {
  const unitByRoot = new Map<number, number>();
  const units: Unit[] = [];
  const producersOf: Set<string>[] = [];
  uses.forEach((u, ui) => {
    if (u.kind === 'bn') return;
    u.out.forEach((a, ch) => {
      const r = atoms.find(a);
      if (atoms.frozen[r]) return;
      let id = unitByRoot.get(r);
      if (id === undefined) {
        id = units.length;
        unitByRoot.set(r, id);
        units.push({ id, produced: [], group: -1 });
        producersOf.push(new Set());
      }
      units[id].produced.push([ui, ch]);
      producersOf[id].add(u.path);
    });
  });
  const groupByKey = new Map<string, Group>();
  const groups: Group[] = [];
  units.forEach((u, i) => {
    const key = [...producersOf[i]].sort().join(' + ');
    let g = groupByKey.get(key);
    if (!g) {
      g = { id: groups.length, label: key, units: [] };
      groupByKey.set(key, g);
      groups.push(g);
    }
    g.units.push(i);
    u.group = g.id;
  });
  const frozenLayers = [...new Set(uses.filter((u) => u.kind !== 'bn' && Array.from(u.out).every((a) => atoms.isFrozen(a))).map((u) => u.path))];
  return {
    uses, pads, units, groups, frozenLayers,
    unitOf: (a: number) => unitByRoot.get(atoms.find(a)) ?? -1,
  };
}
