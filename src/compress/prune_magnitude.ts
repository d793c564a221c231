// Unstructured magnitude pruning with Zhu & Gupta's gradual schedule ("To prune, or not to
// prune", 2017): the weights of smallest magnitude are set to zero, over the whole model at one
// threshold ('global') or at each layer's own ('layer'), the sparsity rising along a cubic from
// s_i to s_f while fine-tuning; masks hold the zeros through every optimizer step after that.
//
// What it buys, honestly: the zeros compress (a file stored sparsely shrinks by about the
// sparsity), but dense kernels do the same work on a zero as on any number, so MACs and
// latency under libtorch or ONNX Runtime do not change. Structured pruning (prune.ts) is what
// makes a model faster.
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { Conv2d, Linear, type Module, type Parameter } from '../nn/index.js';
import { PruneError } from './prune_graph.js';

type AnyModule = Module<unknown[], unknown>;

export interface SparsitySchedule {
  /** s_f: the final sparsity, in [0, 1) */
  final: number;
  /** s_i: the sparsity at the first pruning step (default 0) */
  initial?: number;
  /** t_0: the step of the first pruning (default 0) */
  start?: number;
  /** t_0 + n dt: the step from which the sparsity stays at s_f */
  end: number;
  /** dt: steps between mask updates (default 1) */
  every?: number;
}

/**
 * Zhu & Gupta's s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (n dt))^3, with t taken at the last
 * update step (t_0 + k dt) at or before `step`: 0 before t_0, s_f from t_0 + n dt on.
 */
export function gradualSparsity(step: number, s: SparsitySchedule): number {
  const start = s.start ?? 0;
  const every = s.every ?? 1;
  const initial = s.initial ?? 0;
  if (!(s.final >= 0 && s.final < 1)) throw new PruneError(`sparsity schedule: final must be in [0, 1), got ${s.final}`);
  if (!(initial >= 0 && initial <= s.final)) throw new PruneError(`sparsity schedule: initial must be in [0, final], got ${initial}`);
  if (!(s.end >= start) || !(every >= 1)) throw new PruneError(`sparsity schedule: needs start <= end and every >= 1, got start ${start}, end ${s.end}, every ${every}`);
  if (step < start) return 0;
  if (step >= s.end || s.end === start) return s.final;
  const t = start + Math.floor((step - start) / every) * every;
  return s.final + (initial - s.final) * (1 - (t - start) / (s.end - start)) ** 3;
}

export interface LayerSparsity {
  /** the parameter's dotted name */
  name: string;
  numel: number;
  zeros: number;
  sparsity: number;
}

export interface MagnitudePruneOptions {
  /** one threshold over all pruned weights ('global', default) or each layer's own ('layer') */
  scope?: 'global' | 'layer';
}

/**
 * Masks over the weights of every trainable Conv2d and Linear (biases and norms are left
 * dense, as in Zhu & Gupta). setSparsity recomputes the masks from the current weights;
 * apply() zeroes the masked weights again (after each optimizer step).
 */
export class MagnitudePruner {
  readonly weights: [string, Parameter][];
  readonly scope: 'global' | 'layer';
  #masks: Tensor[] = [];
  #sparsity = 0;

  constructor(model: AnyModule, o: MagnitudePruneOptions = {}) {
    this.scope = o.scope ?? 'global';
    if (this.scope !== 'global' && this.scope !== 'layer') throw new PruneError(`magnitude pruning scope must be 'global' or 'layer', got '${String(this.scope)}'`);
    this.weights = model.namedModules()
      .filter(([, m]) => (m instanceof Conv2d || m instanceof Linear) && m.weight.requiresGrad)
      .map(([p, m]) => [p ? `${p}.weight` : 'weight', (m as Conv2d | Linear).weight]);
    if (this.weights.length === 0) throw new PruneError(`${model.typeName} has no trainable Conv2d or Linear weight to prune`);
  }

  get sparsity(): number {
    return this.#sparsity;
  }

  /** Masks the fraction `s` of weights of smallest magnitude (globally or per layer) and applies them. */
  setSparsity(s: number): void {
    if (!(s >= 0 && s < 1)) throw new PruneError(`sparsity must be in [0, 1), got ${s}`);
    const mags = this.weights.map(([, w]) => noGrad(() => tidy(() => w.abs().float().flatten().toTypedArray() as Float32Array)));
    // one pool of magnitudes ('global') or one per layer; each pool prunes exactly floor(s n)
    // weights: those below the threshold, then ties at it in order
    const pools = this.scope === 'global' ? [mags.map((_, i) => i)] : mags.map((_, i) => [i]);
    const keeps = mags.map((m) => new Float32Array(m.length).fill(1));
    for (const pool of pools) {
      const all = pool.length === 1 ? mags[pool[0]] : concat(pool.map((i) => mags[i]));
      const k = Math.floor(s * all.length);
      if (k === 0) continue;
      const sorted = Float32Array.from(all).sort();
      const th = sorted[k - 1] === sorted[k] ? sorted[k] : k < sorted.length ? sorted[k - 1] + (sorted[k] - sorted[k - 1]) / 2 : Infinity;
      let below = 0;
      for (const i of pool) for (const v of mags[i]) if (v < th) below++;
      let ties = k - below;
      for (const i of pool) {
        const m = mags[i];
        for (let j = 0; j < m.length; j++) {
          if (m[j] < th) keeps[i][j] = 0;
          else if (m[j] === th && ties > 0) {
            keeps[i][j] = 0;
            ties--;
          }
        }
      }
    }
    this.#dispose();
    this.#masks = this.weights.map(([, w], i) => noGrad(() => tidy(() => tensor(keeps[i], { shape: w.shape }).to({ dtype: w.dtype }).keep())));
    this.#sparsity = s;
    this.apply();
  }

  /** Zeroes the masked weights (call after every optimizer step). */
  apply(): void {
    if (this.#masks.length === 0) return;
    noGrad(() => this.weights.forEach(([, w], i) => w.mul_(this.#masks[i])));
  }

  /** Zeros per pruned weight, and over them all. */
  report(): { layers: LayerSparsity[]; total: LayerSparsity } {
    const layers = this.weights.map(([name, w]) => {
      const numel = w.numel();
      const zeros = noGrad(() => tidy(() => w.eq(tensor(0, { dtype: w.dtype })).sum().item()));
      return { name, numel, zeros, sparsity: zeros / numel };
    });
    const numel = layers.reduce((n, l) => n + l.numel, 0);
    const zeros = layers.reduce((n, l) => n + l.zeros, 0);
    return { layers, total: { name: 'total', numel, zeros, sparsity: zeros / numel } };
  }

  #dispose(): void {
    for (const m of this.#masks) m.dispose();
    this.#masks = [];
  }

  dispose(): void {
    this.#dispose();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Bytes of the pruned weights stored densely, and stored as a bitmap of the nonzeros plus their float32 values. */
export function sparseBytes(r: LayerSparsity[]): { dense: number; sparse: number } {
  let dense = 0;
  let sparse = 0;
  for (const l of r) {
    dense += 4 * l.numel;
    sparse += Math.ceil(l.numel / 8) + 4 * (l.numel - l.zeros);
  }
  return { dense, sparse };
}
