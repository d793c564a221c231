// Structured channel pruning: rank the units of the dependency graph (prune_graph.ts) by an
// importance criterion, remove the same fraction of each group's units (the fraction found by
// bisection so that the model's MACs meet the target), and rebuild the layers smaller with
// the kept weights copied. The result is a plain model of the same registered architecture with
// narrower layers, described by PrunedLayers (models/pruned.ts) for the files that store it.
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { Conv2d, Linear, type Module } from '../nn/index.js';
import { applyPrunedLayers, copyInto, layerSizes, type PrunedLayers } from '../models/pruned.js';
import { buildDependencyGraph, PruneError, type DependencyGraph, type LayerUse } from './prune_graph.js';
import { channelImportance, type ImportanceMethod, type TaylorBatch } from './prune_importance.js';

export { PruneError };
type AnyModule = Module<unknown[], unknown>;

export interface ChannelPruneOptions {
  /** the fraction of the model's MACs to keep, in (0, 1) */
  targetMacs: number;
  method: ImportanceMethod;
  /** Taylor: batches of real training data (images and labels) */
  batches?: TaylorBatch[];
  /**
   * each group keeps a multiple of this many channels (default 16), or none at all where every
   * layer it is part of keeps other channels (the zero channels of a residual's padding, say).
   * Only when the target cannot be met so does a group no larger than it keep a multiple of the
   * largest power-of-two fraction of it below its size (8, 4 ...). oneDNN's and ONNX Runtime's
   * (MLAS NCHWc) AVX-512 kernels work on blocks of 16 channels and fall back to slower paths on
   * other counts, wasting the speed-up the removed MACs promise; 16 is also a multiple of
   * AVX2's 8 and WebAssembly SIMD's 4. 1 keeps exactly the ratio.
   */
  roundTo?: number;
}

export interface GroupReport {
  label: string;
  channels: number;
  removed: number;
}

export interface ChannelPruneResult {
  /** the layers now narrower than the model was before this call */
  layers: PrunedLayers;
  macsBefore: number;
  macsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  /** the fraction of each group's channels removed */
  ratio: number;
  groups: GroupReport[];
  /** layers kept whole because their channels are tied to something fixed (inputs, logits, grouped convolutions ...) */
  frozenLayers: string[];
}

interface Plan {
  removed: Uint8Array;
  ratio: number;
}

/** A batch [N, ...] of 2 from one sample: the batch axis must not be mistaken for a size-1 dimension. */
function traceInput(example: Tensor): Tensor {
  return tidy(() => example.narrow(0, 0, 1).expand([2, ...example.shape.slice(1)]).contiguous());
}

function checkTarget(t: number): void {
  if (!(typeof t === 'number' && t > 0 && t < 1)) throw new PruneError(`targetMacs must be a fraction of the MACs to keep, in (0, 1) (0.5 halves them), got ${String(t)}`);
}

/** The multiple a group of `size` channels keeps: roundTo, halved while it is not below the size. */
function channelStep(size: number, roundTo: number): number {
  let step = roundTo;
  while (step > 1 && step >= size) step = Math.floor(step / 2);
  return step;
}

/**
 * Which groups may lose all their units: those where every layer they are part of keeps a
 * channel of another kind, one that is fixed or belongs to a group that never goes entirely.
 */
function mayVanish(g: DependencyGraph): boolean[] {
  const lists = g.uses.flatMap((u) => (u.in ? [u.out, u.in] : [u.out])).map((atoms) => {
    const groups = new Set<number>();
    let fixed = false;
    for (const a of atoms) {
      const unit = g.unitOf(a);
      if (unit < 0) fixed = true;
      else groups.add(g.units[unit].group);
    }
    return { groups, fixed };
  });
  const stays = new Set<number>();
  for (const l of lists) if (!l.fixed && l.groups.size === 1) stays.add([...l.groups][0]);
  return g.groups.map((grp) => !stays.has(grp.id) && lists.every((l) => !l.groups.has(grp.id) || l.fixed || [...l.groups].some((o) => stays.has(o))));
}

/** MACs of one batch-1 forward, as analyze/macs.ts counts them, for the channel counts of `sizes`. */
function macsOf(g: DependencyGraph, sizes: (u: LayerUse) => number[]): number {
  let total = 0;
  for (const u of g.uses) {
    if (u.kind === 'bn' || !u.inEval) continue;
    const s = sizes(u);
    if (u.kind === 'linear') total += u.positions * s[0] * s[1];
    else {
      const [kh, kw] = (u.module as Conv2d).kernelSize;
      total += u.positions * s[1] * (s[0] / s[2]) * kh * kw;
    }
  }
  return total;
}

/**
 * Prunes `model` in place to about `targetMacs` of its MACs (measured on `example`'s image
 * size). Returns what changed; the model keeps working and training as before, only smaller.
 */
export function pruneChannels(model: AnyModule, example: Tensor, o: ChannelPruneOptions): ChannelPruneResult {
  checkTarget(o.targetMacs);
  const x = traceInput(example);
  try {
    const g = buildDependencyGraph(model, x);
    if (g.units.length === 0) throw new PruneError(`${model.typeName}: no channel can be removed (every channel is tied to the input, the output or a fixed layer)`);
    const score = channelImportance(model, g, o.method, o.batches);
    // each group's units, least important first
    const order = g.groups.map((grp) => [...grp.units].sort((a, b) => score[a] - score[b] || a - b));
    const sizesFor = channelCounts(g);
    const roundTo = o.roundTo ?? 16;
    if (!(Number.isInteger(roundTo) && roundTo >= 1)) throw new PruneError(`roundTo must be a positive integer, got ${String(roundTo)}`);
    const vanishes = mayVanish(g);
    const planFor = (ratio: number, halveSmall: boolean): Plan => {
      const removed = new Uint8Array(g.units.length);
      order.forEach((units, gi) => {
        const size = units.length;
        const step = halveSmall ? channelStep(size, roundTo) : Math.min(roundTo, size);
        const keep = size - Math.floor(ratio * size + 1e-9);
        const kept = Math.min(size, Math.max(vanishes[gi] ? 0 : step, Math.round(keep / step) * step));
        for (let i = 0; i < size - kept; i++) removed[units[i]] = 1;
      });
      return { removed, ratio };
    };
    const full = sizesFor(new Uint8Array(g.units.length));
    const macsBefore = macsOf(g, full);
    const goal = o.targetMacs * macsBefore;
    const macsAt = (p: Plan): number => macsOf(g, sizesFor(p.removed));
    // groups of 16 channels or fewer are halved only when the target needs it
    const halveSmall = macsAt(planFor(1, false)) > goal;
    let hi = planFor(1, halveSmall);
    if (macsAt(hi) > goal) {
      throw new PruneError(`${model.typeName}: removing all but one channel of every prunable group still leaves ${(macsAt(hi) / macsBefore * 100).toFixed(1)}% of the MACs; targetMacs ${o.targetMacs} cannot be reached`);
    }
    let lo = 0;
    let hiRatio = 1;
    for (let it = 0; it < 40; it++) {
      const mid = (lo + hiRatio) / 2;
      const p = planFor(mid, halveSmall);
      if (macsAt(p) <= goal) {
        hiRatio = mid;
        hi = p;
      } else lo = mid;
    }
    const paramsBefore = model.numParameters();
    const layers = applyPlan(model, g, hi.removed, sizesFor(hi.removed));
    checkRuns(model, x);
    const groups = g.groups.map((grp) => ({ label: grp.label, channels: grp.units.length, removed: grp.units.filter((u) => hi.removed[u]).length }));
    return {
      layers, macsBefore, macsAfter: macsAt(hi), paramsBefore, paramsAfter: model.numParameters(), ratio: hi.ratio, groups, frozenLayers: g.frozenLayers,
    };
  } finally {
    x.dispose();
  }
}

/**
 * Runs the rebuilt model once: a forward that computes a width from its input's shape (a pad to
 * a fixed total, say) rather than from its layers would fail here, naming the layer, instead of
 * later in training.
 */
function checkRuns(model: AnyModule, x: Tensor): void {
  const modes = model.modules().map((m) => [m, m.training] as const);
  try {
    model.eval();
    noGrad(() => tidy(() => { (model as unknown as Module<[Tensor], unknown>).call(x); }));
  } catch (e) {
    throw new PruneError(`the pruned ${model.typeName} no longer runs (${(e as Error).message}); some part of its forward fixes a channel count the trace could not see`);
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** For a set of removed units, each conv/linear use's [in, out(, groups)] channel counts. */
function channelCounts(g: DependencyGraph): (removed: Uint8Array) => (u: LayerUse) => number[] {
  const unitIds = new Map<LayerUse, Int32Array[]>();
  for (const u of g.uses) unitIds.set(u, [Int32Array.from(u.out, g.unitOf), u.in ? Int32Array.from(u.in, g.unitOf) : new Int32Array(0)]);
  const kept = (ids: Int32Array, removed: Uint8Array): number => {
    let n = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || !removed[ids[i]]) n++;
    return n;
  };
  return (removed) => (u) => {
    const [outIds, inIds] = unitIds.get(u)!;
    const cout = kept(outIds, removed);
    if (u.kind === 'linear') return [kept(inIds, removed), cout];
    const m = u.module as Conv2d;
    const cin = kept(inIds, removed);
    const depthwise = m.groups > 1 && m.groups === m.inChannels;
    return [cin, cout, depthwise ? cin : m.groups];
  };
}

/**
 * Removes the units `pick` chooses from the dependency graph of `model` (traced on `example`)
 * and rebuilds the layers: the lower-level step of pruneChannels, for a criterion of one's own.
 * A group keeps at least one unit whatever pick returns. Returns the layers that changed.
 */
export function pruneUnits(model: AnyModule, example: Tensor, pick: (g: DependencyGraph) => Iterable<number>): PrunedLayers {
  const x = traceInput(example);
  try {
    const g = buildDependencyGraph(model, x);
    const removed = new Uint8Array(g.units.length);
    for (const u of pick(g)) {
      if (!(Number.isInteger(u) && u >= 0 && u < g.units.length)) throw new PruneError(`pruneUnits: unit ${String(u)} is not one of the graph's ${g.units.length}`);
      removed[u] = 1;
    }
    for (const grp of g.groups) if (grp.units.every((u) => removed[u])) removed[grp.units[0]] = 0;
    const layers = applyPlan(model, g, removed, channelCounts(g)(removed));
    checkRuns(model, x);
    return layers;
  } finally {
    x.dispose();
  }
}

/** Slices every resized layer's tensors to the kept channels and rebuilds the layers. */
function applyPlan(model: AnyModule, g: DependencyGraph, removed: Uint8Array, sizes: (u: LayerUse) => number[]): PrunedLayers {
  const layers: PrunedLayers = {};
  const values = new Map<string, Tensor>();
  const seen = new Set<string>();
  const keepOf = (atoms: Int32Array): number[] => {
    const out: number[] = [];
    atoms.forEach((a, i) => {
      const u = g.unitOf(a);
      if (u < 0 || !removed[u]) out.push(i);
    });
    return out;
  };
  const take = (t: Tensor, dim: number, keep: number[]): Tensor => (keep.length === t.size(dim) ? t.clone() : t.indexSelect(dim, tensor(keep, { dtype: 'int64' })));
  try {
    noGrad(() => {
      for (const u of g.uses) {
        if (seen.has(u.path)) continue;
        seen.add(u.path);
        const m = u.module;
        const before = layerSizes(m as AnyModule)!;
        const after = u.kind === 'bn' ? [keepOf(u.out).length] : sizes(u);
        if (after.every((s, i) => s === before[i])) continue;
        layers[u.path] = after;
        const keepOut = keepOf(u.out);
        const put = (name: string, t: Tensor | null, f: (t: Tensor) => Tensor): void => {
          if (t) values.set(`${u.path}.${name}`, tidy(() => f(t)).keep());
        };
        if (m instanceof Conv2d) {
          const inSliced = m.groups === 1;
          const keepIn = keepOf(u.in!);
          put('weight', m.weight, (w) => (inSliced ? take(take(w, 0, keepOut), 1, keepIn) : take(w, 0, keepOut)));
          put('bias', m.bias, (b) => take(b, 0, keepOut));
        } else if (m instanceof Linear) {
          const keepIn = keepOf(u.in!);
          put('weight', m.weight, (w) => take(take(w, 0, keepOut), 1, keepIn));
          put('bias', m.bias, (b) => take(b, 0, keepOut));
        } else {
          put('weight', m.weight, (w) => take(w, 0, keepOut));
          put('bias', m.bias, (b) => take(b, 0, keepOut));
          for (const [name, b] of (m as AnyModule).ownBuffers()) if (b.ndim === 1) put(name, b, (t) => take(t, 0, keepOut));
        }
      }
    });
    for (const p of g.pads) {
      const after = [keepOf(p.front).length, keepOf(p.back).length];
      if (after[0] !== p.module.front || after[1] !== p.module.back) layers[p.path] = after;
    }
    applyPrunedLayers(model, layers, 'pruneChannels');
    copyInto(model, values);
  } finally {
    for (const t of values.values()) t.dispose();
  }
  return layers;
}
