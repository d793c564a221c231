// Learning-rate schedules with torch.optim.lr_scheduler's semantics: the same recursive
// ("chainable") updates and closed forms, so the lr at every step equals PyTorch's.
//
// A schedule counts its own steps; whether a step is a batch or an epoch is the caller's
// choice: call step() after each optimizer.step() for a per-batch schedule (OneCycleLR's
// totalSteps = epochs * batches per epoch), or once per epoch with epoch counts. As in
// PyTorch, constructing a schedule already applies its step-0 lr (e.g. warmup's start) to the
// optimizer's groups, and step() goes after optimizer.step().
//
// Warmup then cosine, stepped per batch:
//   const warm = new LinearLR(opt, { startFactor: 0.01, totalIters: warmupSteps });
//   const cos = new CosineAnnealingLR(opt, { tMax: totalSteps - warmupSteps });
//   const sched = new SequentialLR(opt, [warm, cos], [warmupSteps]);
import type { ScheduleFields } from './optim/optimizer.js';
import type { JsonValue } from '../io/json.js';

/** What a schedule needs of an optimizer's groups: lr, and momentum or betas for OneCycleLR. */
export interface SchedulableGroup extends ScheduleFields {
  lr: number;
  momentum?: number;
  betas?: [number, number];
}
export interface SchedulableOptimizer {
  readonly paramGroups: SchedulableGroup[];
  readonly defaults: object;
}

/** A schedule's checkpoint: plain JSON. */
export interface SchedulerState {
  kind: string;
  [key: string]: JsonValue;
}

export interface Scheduler {
  /** Advances one step (a batch or an epoch, as the caller counts) and sets each group's lr. */
  step(): void;
  /** The lr of each group as this schedule last set it. */
  getLastLr(): number[];
  stateDict(): SchedulerState;
  loadStateDict(state: SchedulerState): void;
}

type Config = { [key: string]: JsonValue };

/**
 * The base of the single schedules (PyTorch's _LRScheduler). Constructing one records each
 * group's initialLr (once: the first schedule on an optimizer sets it) and takes step 0.
 */
export abstract class LRScheduler<C extends Config = Config> implements Scheduler {
  readonly optimizer: SchedulableOptimizer;
  /** Each group's lr at the start (its initialLr). */
  baseLrs: number[];
  /** The index of the last step taken: 0 after construction. */
  lastEpoch = -1;
  /** How many times the lr was set (PyTorch's _step_count); CosineAnnealingLR reads it. */
  stepCount = 0;
  protected lastLr: number[] = [];
  protected cfg: C;

  /** The schedule's name in checkpoints and errors; each schedule overrides it. */
  get kind(): string { return 'LRScheduler'; }

  constructor(optimizer: SchedulableOptimizer, cfg: C) {
    if (!optimizer || !Array.isArray(optimizer.paramGroups)) throw new TypeError(`${this.kind}: expected an optimizer with paramGroups`);
    this.optimizer = optimizer;
    this.cfg = cfg;
    for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.initialStep();
  }

  /** @internal Resets the step count and takes step 0 (SequentialLR calls it on its first schedule). */
  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  step(): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    this.apply(this.getLr());
  }

  /**
   * @internal Jumps to `epoch` using the closed form where there is one (PyTorch's deprecated
   * step(epoch)); SequentialLR starts each later schedule with stepAt(0).
   */
  stepAt(epoch: number): void {
    this.stepCount += 1;
    this.lastEpoch = epoch;
    this.apply(this.closedFormLr());
  }

  getLastLr(): number[] {
    return this.lastLr.slice();
  }

  /** The recursive form: each group's next lr from its current one. */
  protected abstract getLr(): number[];
  /** The lr at lastEpoch computed from baseLrs alone; schedules without one use getLr. */
  protected closedFormLr(): number[] {
    return this.getLr();
  }

  protected get groups(): SchedulableGroup[] {
    return this.optimizer.paramGroups;
  }

  private apply(values: number[]): void {
    this.groups.forEach((g, i) => { g.lr = values[i]; });
    this.lastLr = this.groups.map((g) => g.lr);
  }

  stateDict(): SchedulerState {
    return {
      kind: this.kind, lastEpoch: this.lastEpoch, stepCount: this.stepCount,
      baseLrs: [...this.baseLrs], lastLr: [...this.lastLr], config: structuredClone(this.cfg),
    };
  }

  /** Restores a stateDict() of the same kind of schedule over as many groups (its settings too, as in PyTorch). */
  loadStateDict(s: SchedulerState): void {
    const where = `${this.kind}.loadStateDict`;
    if (!s || s.kind !== this.kind) throw new Error(`${where}: expected the state of a ${this.kind}, got ${s?.kind ?? String(s)}`);
    const n = this.groups.length;
    for (const key of ['baseLrs', 'lastLr'] as const) {
      const v = s[key];
      if (!isNumbers(v) || v.length !== n) throw new Error(`${where}: ${key} must be ${n} numbers (one per param group), got ${JSON.stringify(v)}`);
    }
    for (const key of ['lastEpoch', 'stepCount'] as const) {
      if (!Number.isInteger(s[key])) throw new Error(`${where}: ${key} must be an integer, got ${JSON.stringify(s[key])}`);
    }
    if (typeof s.config !== 'object' || s.config === null || Array.isArray(s.config)) throw new Error(`${where}: config must be an object`);
    const missing = Object.keys(this.cfg).filter((k) => !(k in (s.config as Config)));
    if (missing.length) throw new Error(`${where}: config lacks ${missing.join(', ')}`);
    this.lastEpoch = s.lastEpoch as number;
    this.stepCount = s.stepCount as number;
    this.baseLrs = [...(s.baseLrs as number[])];
    this.lastLr = [...(s.lastLr as number[])];
    this.cfg = structuredClone(s.config) as C;
  }
}

const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

function checkInt(v: number, what: string, where: string, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${where}: ${what} must be an integer >= ${min}, got ${v}`);
  return v;
}

function checkNumber(v: number, what: string, where: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${where}: ${what} must be a number, got ${v}`);
  return v;
}

// Python's `%` (floored: the result has the divisor's sign).
const pyMod = (a: number, b: number): number => ((a % b) + b) % b;

function bisectRight(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x < sorted[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ---- the schedules ------------------------------------------------------------------------------

/** lr = initialLr * gamma^floor(epoch / stepSize). */
export class StepLR extends LRScheduler<{ stepSize: number; gamma: number }> {
  override get kind(): string { return 'StepLR'; }

  constructor(optimizer: SchedulableOptimizer, o: { stepSize: number; gamma?: number }) {
    super(optimizer, { stepSize: checkInt(o?.stepSize, 'stepSize', 'StepLR', 1), gamma: checkNumber(o.gamma ?? 0.1, 'gamma', 'StepLR') });
  }

  protected getLr(): number[] {
    const { stepSize, gamma } = this.cfg;
    if (this.lastEpoch === 0 || this.lastEpoch % stepSize !== 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.cfg.gamma ** Math.floor(this.lastEpoch / this.cfg.stepSize));
  }
}

/** lr = initialLr * gamma^(number of milestones passed); a milestone listed twice counts twice. */
export class MultiStepLR extends LRScheduler<{ milestones: number[]; gamma: number }> {
  override get kind(): string { return 'MultiStepLR'; }

  constructor(optimizer: SchedulableOptimizer, o: { milestones: number[]; gamma?: number }) {
    if (!Array.isArray(o?.milestones)) throw new TypeError(`MultiStepLR: milestones must be an array of integers, got ${JSON.stringify(o?.milestones)}`);
    const milestones = o.milestones.map((m) => checkInt(m, 'each milestone', 'MultiStepLR', 0)).sort((a, b) => a - b);
    super(optimizer, { milestones, gamma: checkNumber(o.gamma ?? 0.1, 'gamma', 'MultiStepLR') });
  }

  protected getLr(): number[] {
    const hits = this.cfg.milestones.filter((m) => m === this.lastEpoch).length;
    if (hits === 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.cfg.gamma ** hits);
  }

  protected override closedFormLr(): number[] {
    const passed = bisectRight(this.cfg.milestones, this.lastEpoch);
    return this.baseLrs.map((b) => b * this.cfg.gamma ** passed);
  }
}

/** lr = initialLr * gamma^epoch. */
export class ExponentialLR extends LRScheduler<{ gamma: number }> {
  override get kind(): string { return 'ExponentialLR'; }

  constructor(optimizer: SchedulableOptimizer, o: { gamma: number }) {
    super(optimizer, { gamma: checkNumber(o?.gamma, 'gamma', 'ExponentialLR') });
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.cfg.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.cfg.gamma ** this.lastEpoch);
  }
}

/**
 * The lr factor goes linearly from startFactor to endFactor over totalIters steps, then stays
 * (warmup: startFactor 0.01, endFactor 1).
 */
export class LinearLR extends LRScheduler<{ startFactor: number; endFactor: number; totalIters: number }> {
  override get kind(): string { return 'LinearLR'; }

  constructor(optimizer: SchedulableOptimizer, o: { startFactor?: number; endFactor?: number; totalIters?: number } = {}) {
    const startFactor = o.startFactor ?? 1 / 3;
    const endFactor = o.endFactor ?? 1;
    if (!(startFactor >= 0 && startFactor <= 1)) throw new RangeError(`LinearLR: startFactor must be in [0, 1], got ${startFactor}`);
    if (!(endFactor >= 0 && endFactor <= 1)) throw new RangeError(`LinearLR: endFactor must be in [0, 1], got ${endFactor}`);
    super(optimizer, { startFactor, endFactor, totalIters: checkInt(o.totalIters ?? 5, 'totalIters', 'LinearLR', 1) });
  }

  protected getLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n } = this.cfg;
    if (this.lastEpoch === 0) return this.groups.map((g) => g.lr * s);
    if (this.lastEpoch > n) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * (1 + (e - s) / (n * s + (this.lastEpoch - 1) * (e - s))));
  }

  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n } = this.cfg;
    return this.baseLrs.map((b) => b * (s + ((e - s) * Math.min(n, this.lastEpoch)) / n));
  }
}

/** Half a cosine from initialLr down to etaMin over tMax steps (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler<{ tMax: number; etaMin: number }> {
  override get kind(): string { return 'CosineAnnealingLR'; }

  constructor(optimizer: SchedulableOptimizer, o: { tMax: number; etaMin?: number }) {
    super(optimizer, { tMax: checkInt(o?.tMax, 'tMax', 'CosineAnnealingLR', 1), etaMin: checkNumber(o.etaMin ?? 0, 'etaMin', 'CosineAnnealingLR') });
  }

  protected getLr(): number[] {
    const { tMax: T, etaMin: m } = this.cfg;
    const e = this.lastEpoch;
    if (e === 0) return this.groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0) return this.baseLrs.map((b) => m + ((b - m) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    if (pyMod(e - 1 - T, 2 * T) === 0) return this.groups.map((g, i) => g.lr + ((this.baseLrs[i] - m) * (1 - Math.cos(Math.PI / T))) / 2);
    return this.groups.map((g) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (g.lr - m) + m);
  }

  protected override closedFormLr(): number[] {
    const { tMax: T, etaMin: m } = this.cfg;
    return this.baseLrs.map((b) => m + ((b - m) * (1 + Math.cos((Math.PI * this.lastEpoch) / T))) / 2);
  }
}

export interface OneCycleOptions {
  /** The peak lr: one for all groups or one per group. */
  maxLr: number | number[];
  /** Steps in the cycle; or give epochs and stepsPerEpoch. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the lr (default 0.3). */
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  /** Cycle momentum (or Adam's beta1) inversely to the lr, between baseMomentum and maxMomentum (default true). */
  cycleMomentum?: boolean;
  baseMomentum?: number | number[];
  maxMomentum?: number | number[];
  /** initialLr = maxLr / divFactor (default 25) */
  divFactor?: number;
  /** minLr = initialLr / finalDivFactor (default 1e4) */
  finalDivFactor?: number;
  threePhase?: boolean;
}

type OneCycleConfig = { totalSteps: number; pctStart: number; annealStrategy: string; cycleMomentum: boolean; useBeta1: boolean; threePhase: boolean };
type Phase = { endStep: number; startLr: keyof ScheduleFields; endLr: keyof ScheduleFields; startM: keyof ScheduleFields; endM: keyof ScheduleFields };

/**
 * The 1cycle policy (Smith & Topin): lr from maxLr/divFactor up to maxLr over pctStart of the
 * steps, then down to minLr; momentum moves the opposite way. Step it once per batch.
 */
export class OneCycleLR extends LRScheduler<OneCycleConfig> {
  override get kind(): string { return 'OneCycleLR'; }

  constructor(optimizer: SchedulableOptimizer, o: OneCycleOptions) {
    super(optimizer, OneCycleLR.prepare(optimizer, o));
  }

  // Writes initialLr/maxLr/minLr (and the momentum bounds) into the groups before the base
  // constructor reads initialLr, as PyTorch's constructor does.
  private static prepare(optimizer: SchedulableOptimizer, o: OneCycleOptions): OneCycleConfig {
    const where = 'OneCycleLR';
    let totalSteps: number;
    if (o?.totalSteps !== undefined) totalSteps = checkInt(o.totalSteps, 'totalSteps', where, 1);
    else if (o?.epochs !== undefined && o.stepsPerEpoch !== undefined) totalSteps = checkInt(o.epochs, 'epochs', where, 1) * checkInt(o.stepsPerEpoch, 'stepsPerEpoch', where, 1);
    else throw new Error(`${where}: give totalSteps, or epochs and stepsPerEpoch`);
    const pctStart = o.pctStart ?? 0.3;
    if (!(pctStart >= 0 && pctStart <= 1)) throw new RangeError(`${where}: pctStart must be in [0, 1], got ${pctStart}`);
    const annealStrategy = o.annealStrategy ?? 'cos';
    if (annealStrategy !== 'cos' && annealStrategy !== 'linear') throw new RangeError(`${where}: annealStrategy must be 'cos' or 'linear', got ${String(annealStrategy)}`);
    const groups = optimizer.paramGroups;
    const perGroup = (name: string, v: number | number[]): number[] => {
      if (!Array.isArray(v)) return groups.map(() => v);
      if (v.length !== groups.length) throw new Error(`${where}: expected ${groups.length} values for ${name} (one per param group), got ${v.length}`);
      return v;
    };
    const divFactor = o.divFactor ?? 25;
    const finalDivFactor = o.finalDivFactor ?? 1e4;
    const maxLrs = perGroup('maxLr', o.maxLr);
    groups.forEach((g, i) => {
      g.initialLr = maxLrs[i] / divFactor;
      g.maxLr = maxLrs[i];
      g.minLr = g.initialLr / finalDivFactor;
    });
    const cycleMomentum = o.cycleMomentum ?? true;
    const useBeta1 = 'betas' in optimizer.defaults;
    if (cycleMomentum) {
      if (!('momentum' in optimizer.defaults) && !useBeta1) throw new Error(`${where}: the optimizer has neither momentum nor betas; pass cycleMomentum: false`);
      const maxM = perGroup('maxMomentum', o.maxMomentum ?? 0.95);
      const baseM = perGroup('baseMomentum', o.baseMomentum ?? 0.85);
      groups.forEach((g, i) => {
        setMomentum(g, useBeta1, maxM[i]);
        g.maxMomentum = maxM[i];
        g.baseMomentum = baseM[i];
      });
    }
    return { totalSteps, pctStart, annealStrategy, cycleMomentum, useBeta1, threePhase: o.threePhase ?? false };
  }

  private phases(): Phase[] {
    const { totalSteps: n, pctStart: p } = this.cfg;
    if (this.cfg.threePhase) {
      return [
        { endStep: p * n - 1, startLr: 'initialLr', endLr: 'maxLr', startM: 'maxMomentum', endM: 'baseMomentum' },
        { endStep: 2 * p * n - 2, startLr: 'maxLr', endLr: 'initialLr', startM: 'baseMomentum', endM: 'maxMomentum' },
        { endStep: n - 1, startLr: 'initialLr', endLr: 'minLr', startM: 'maxMomentum', endM: 'maxMomentum' },
      ];
    }
    return [
      { endStep: p * n - 1, startLr: 'initialLr', endLr: 'maxLr', startM: 'maxMomentum', endM: 'baseMomentum' },
      { endStep: n - 1, startLr: 'maxLr', endLr: 'minLr', startM: 'baseMomentum', endM: 'maxMomentum' },
    ];
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.cfg.annealStrategy === 'linear') return (end - start) * pct + start;
    return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  }

  protected getLr(): number[] {
    const stepNum = this.lastEpoch;
    if (stepNum > this.cfg.totalSteps) {
      throw new Error(`OneCycleLR: tried to step ${stepNum + 1} times; the cycle has ${this.cfg.totalSteps} steps`);
    }
    const phases = this.phases();
    return this.groups.map((g) => {
      let startStep = 0;
      for (let i = 0; i < phases.length; i++) {
        const ph = phases[i];
        if (stepNum <= ph.endStep || i === phases.length - 1) {
          const pct = (stepNum - startStep) / (ph.endStep - startStep);
          if (this.cfg.cycleMomentum) setMomentum(g, this.cfg.useBeta1, this.anneal(g[ph.startM]!, g[ph.endM]!, pct));
          return this.anneal(g[ph.startLr]!, g[ph.endLr]!, pct);
        }
        startStep = ph.endStep;
      }
      throw new Error('OneCycleLR: unreachable');
    });
  }
}

function setMomentum(g: SchedulableGroup, useBeta1: boolean, m: number): void {
  if (useBeta1) g.betas = [m, g.betas![1]];
  else g.momentum = m;
}

/**
 * Runs schedules one after another: schedulers[i] from milestones[i - 1] on (each later one
 * starts from its own step 0, through its closed form), as PyTorch's SequentialLR.
 */
export class SequentialLR implements Scheduler {
  readonly optimizer: SchedulableOptimizer;
  lastEpoch: number;
  #schedulers: LRScheduler[];
  #milestones: number[];
  #lastLr: number[];

  constructor(optimizer: SchedulableOptimizer, schedulers: LRScheduler[], milestones: number[]) {
    if (!Array.isArray(schedulers) || schedulers.length === 0) throw new Error('SequentialLR: give at least one schedule');
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) throw new Error(`SequentialLR: schedule ${i} (${s.kind}) drives another optimizer than the one given`);
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new Error(`SequentialLR: expected ${schedulers.length - 1} milestones for ${schedulers.length} schedules, got ${milestones.length}`);
    }
    milestones.forEach((m, i) => {
      checkInt(m, `milestones[${i}]`, 'SequentialLR', 0);
      if (i > 0 && m <= milestones[i - 1]) throw new RangeError(`SequentialLR: milestones must increase, got ${JSON.stringify(milestones)}`);
    });
    this.optimizer = optimizer;
    this.#schedulers = schedulers;
    this.#milestones = [...milestones];
    this.lastEpoch = 0;
    // undo the step 0 every schedule took when it was built, and redo the first one's
    for (const g of optimizer.paramGroups) g.lr = g.initialLr!;
    for (const s of schedulers) s.lastEpoch -= 1;
    schedulers[0].initialStep();
    this.#lastLr = schedulers[0].getLastLr();
  }

  get schedulers(): readonly LRScheduler[] {
    return this.#schedulers;
  }

  step(): void {
    this.lastEpoch += 1;
    const idx = bisectRight(this.#milestones, this.lastEpoch);
    const s = this.#schedulers[idx];
    if (idx > 0 && this.#milestones[idx - 1] === this.lastEpoch) s.stepAt(0);
    else s.step();
    this.#lastLr = s.getLastLr();
  }

  getLastLr(): number[] {
    return this.#lastLr.slice();
  }

  stateDict(): SchedulerState {
    return {
      kind: 'SequentialLR', lastEpoch: this.lastEpoch, milestones: [...this.#milestones], lastLr: [...this.#lastLr],
      schedulers: this.#schedulers.map((s) => s.stateDict()),
    };
  }

  loadStateDict(s: SchedulerState): void {
    const where = 'SequentialLR.loadStateDict';
    if (!s || s.kind !== 'SequentialLR') throw new Error(`${where}: expected the state of a SequentialLR, got ${s?.kind ?? String(s)}`);
    const subs = s.schedulers;
    if (!Array.isArray(subs) || subs.length !== this.#schedulers.length) {
      throw new Error(`${where}: expected the states of ${this.#schedulers.length} schedules, got ${Array.isArray(subs) ? subs.length : JSON.stringify(subs)}`);
    }
    if (!Number.isInteger(s.lastEpoch)) throw new Error(`${where}: lastEpoch must be an integer, got ${JSON.stringify(s.lastEpoch)}`);
    if (!isNumbers(s.milestones) || s.milestones.length !== this.#milestones.length) throw new Error(`${where}: milestones must be ${this.#milestones.length} integers`);
    if (!isNumbers(s.lastLr)) throw new Error(`${where}: lastLr must be numbers`);
    this.#schedulers.forEach((sch, i) => sch.loadStateDict(subs[i] as SchedulerState));
    this.lastEpoch = s.lastEpoch as number;
    this.#milestones = [...s.milestones];
    this.#lastLr = [...s.lastLr];
  }
}
