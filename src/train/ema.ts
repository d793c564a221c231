// An exponential moving average of a model's weights, as timm's ModelEmaV3 (ModelEmaV2 with a
// decay warmup): every floating tensor of the state dict (parameters and buffers) becomes
// ema = decay * ema + (1 - decay) * value; integer buffers (num_batches_tracked) are copied.
//
// The average lives in a Map of tensors named like the model's state dict, so it loads into
// any instance of the model (`other.loadStateDict(ema.tensors)`) and saves as a model
// checkpoint. To evaluate it in the training model itself, swap it in and back:
//   const acc = await ema.withWeights(model, () => evaluate(model));
import { F, Tensor, isFloating, noGrad, tidy, type StateDict } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import type { JsonValue } from '../io/json.js';

export interface ModelEmaOptions {
  /** default 0.9999 */
  decay?: number;
  /** the floor of the warmed-up decay (default 0) */
  minDecay?: number;
  /** updates before this step copy the model (decay 0); default 0 */
  updateAfterStep?: number;
  /** decay = 1 - (1 + step / warmupGamma)^-warmupPower, capped at `decay` (default false) */
  useWarmup?: boolean;
  warmupGamma?: number;
  /** default 2/3 */
  warmupPower?: number;
  /** keep the average on another device (e.g. 'cpu' to spare GPU memory) */
  device?: string;
  /** average the parameters only and copy the buffers (default false) */
  excludeBuffers?: boolean;
}

type AnyModule = Module<unknown[], unknown>;

export interface ModelEmaState {
  /** The averaged weights by state-dict name: a model checkpoint in itself. */
  tensors: StateDict;
  meta: { updates: number; decay: number; [key: string]: JsonValue };
}

export class ModelEma {
  readonly decay: number;
  readonly minDecay: number;
  readonly updateAfterStep: number;
  readonly useWarmup: boolean;
  readonly warmupGamma: number;
  readonly warmupPower: number;
  readonly device: string | undefined;
  readonly excludeBuffers: boolean;
  /** The averaged tensors by the model's state-dict names; this object's own copies. */
  readonly tensors: StateDict = new Map();
  /** How many times update() ran. */
  updates = 0;
  #paramNames: Set<string>;

  /** Starts the average at a copy of the model's current weights and buffers. */
  constructor(model: AnyModule, o: ModelEmaOptions = {}) {
    this.decay = o.decay ?? 0.9999;
    if (!(this.decay >= 0 && this.decay <= 1)) throw new RangeError(`ModelEma: decay must be in [0, 1], got ${this.decay}`);
    this.minDecay = o.minDecay ?? 0;
    this.updateAfterStep = o.updateAfterStep ?? 0;
    this.useWarmup = o.useWarmup ?? false;
    this.warmupGamma = o.warmupGamma ?? 1;
    this.warmupPower = o.warmupPower ?? 2 / 3;
    this.device = o.device;
    this.excludeBuffers = o.excludeBuffers ?? false;
    this.#paramNames = new Set(model.namedParameters().map(([n]) => n));
    noGrad(() => {
      for (const [name, t] of model.stateDict()) {
        const moved = this.device ? t.to({ device: this.device }) : t;
        this.tensors.set(name, (moved === t ? t.clone() : moved).keep());
      }
    });
  }

  /** The decay for an update at `step` (timm's get_decay): `decay` when no step is given. */
  getDecay(step?: number): number {
    if (step === undefined) return this.decay;
    const s = Math.max(0, step - this.updateAfterStep - 1);
    if (s <= 0) return 0;
    if (!this.useWarmup) return this.decay;
    const d = 1 - (1 + s / this.warmupGamma) ** -this.warmupPower;
    return Math.max(Math.min(d, this.decay), this.minDecay);
  }

  /**
   * Moves the average toward the model. Pass the optimizer's step count as `step` for the
   * warmup and updateAfterStep to apply (as timm's trainer does); without it, the decay is constant.
   */
  update(model: AnyModule, step?: number): void {
    const decay = this.getDecay(step);
    noGrad(() => tidy(() => {
      const lerpE: Tensor[] = [];
      const lerpM: Tensor[] = [];
      const copyE: Tensor[] = [];
      const copyM: Tensor[] = [];
      for (const [name, e, m] of this.pairs(model, 'update')) {
        const averaged = isFloating(e.dtype) && (!this.excludeBuffers || this.#paramNames.has(name));
        (averaged ? lerpE : copyE).push(e);
        (averaged ? lerpM : copyM).push(m);
      }
      if (lerpE.length > 0) {
        F.foreach.mulScalar_(lerpE, decay);
        F.foreach.add_(lerpE, lerpM, 1 - decay);
      }
      if (copyE.length > 0) F.foreach.copy_(copyE, copyM);
    }));
    this.updates += 1;
  }

  /** Sets the average to the model's current weights. */
  set(model: AnyModule): void {
    noGrad(() => tidy(() => {
      const pairs = this.pairs(model, 'set');
      F.foreach.copy_(pairs.map(([, e]) => e), pairs.map(([, , m]) => m));
    }));
  }

  /**
   * Exchanges the model's weights with the average (in place, keeping every tensor object, so
   * the optimizer's state still matches): call it again to swap back.
   */
  swap(model: AnyModule): void {
    noGrad(() => tidy(() => {
      const own = model.stateDict();
      const pairs = this.pairs(model, 'swap');
      const modelT = pairs.map(([name]) => own.get(name)!);
      const saved = modelT.map((t) => t.clone());
      F.foreach.copy_(modelT, pairs.map(([, e]) => e));
      F.foreach.copy_(pairs.map(([, e]) => e), saved);
    }));
  }

  /** Runs fn (sync or async) with the average swapped into the model, and swaps back after. */
  withWeights<T>(model: AnyModule, fn: () => T): T {
    this.swap(model);
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.swap(model);
      throw err;
    }
    if (result instanceof Promise) return result.finally(() => this.swap(model)) as T;
    this.swap(model);
    return result;
  }

  /** Copies the average into another instance of the model (e.g. one kept for evaluation). */
  copyTo(model: AnyModule): void {
    model.loadStateDict(this.tensors);
  }

  // [name, ema tensor, model tensor on the ema's device], checking both have the same keys
  private pairs(model: AnyModule, what: string): [string, Tensor, Tensor][] {
    const own = model.stateDict();
    const missing = [...this.tensors.keys()].filter((k) => !own.has(k));
    const extra = [...own.keys()].filter((k) => !this.tensors.has(k));
    if (missing.length || extra.length) {
      throw new Error(`ModelEma.${what}: the model's state dict does not match the average's: ` +
        `${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected ${extra.join(', ')}` : ''}`);
    }
    return [...this.tensors].map(([name, e]) => {
      const m = own.get(name)!;
      if (m.shape.length !== e.shape.length || m.shape.some((d, i) => d !== e.shape[i])) {
        throw new Error(`ModelEma.${what}: '${name}' has shape [${m.shape.join(', ')}] in the model, [${e.shape.join(', ')}] in the average`);
      }
      return [name, e, this.device ? m.to({ device: this.device }) : m];
    });
  }

  stateDict(): ModelEmaState {
    return {
      tensors: new Map(this.tensors),
      meta: { updates: this.updates, decay: this.decay, minDecay: this.minDecay, updateAfterStep: this.updateAfterStep, useWarmup: this.useWarmup },
    };
  }

  /** Restores a stateDict(): the averaged tensors (copied in, same names and shapes) and the update count. */
  loadStateDict(s: ModelEmaState): void {
    const given: StateDict = s?.tensors instanceof Map ? s.tensors : new Map();
    const problems: string[] = [];
    if (!(s?.tensors instanceof Map)) problems.push('tensors must be a Map of name to tensor, as stateDict() returns it');
    for (const [k, t] of this.tensors) {
      const g = given.get(k);
      if (!g) problems.push(`missing '${k}'`);
      else if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) problems.push(`'${k}' has shape [${g.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
    }
    for (const k of given.keys()) if (!this.tensors.has(k)) problems.push(`unexpected '${k}'`);
    if (!Number.isInteger(s?.meta?.updates)) problems.push(`meta.updates must be an integer, got ${JSON.stringify(s?.meta?.updates)}`);
    if (problems.length) throw new Error(`ModelEma.loadStateDict: ${problems.join('; ')}`);
    noGrad(() => { for (const [k, t] of this.tensors) t.copy_(given.get(k)!); });
    this.updates = s.meta.updates;
  }

  /** Frees the averaged tensors. */
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}
