// From a recipe to the objects a run trains with: the model (with transfer-learning weights and
// a new head), its parameter groups, the optimizer and the per-step learning-rate schedule.
import { Linear, type Module, type Parameter } from '../nn/index.js';
import { createModel, modelEntry, type ModelConfig } from '../models/index.js';
import { SGD, Adam, AdamW, RMSprop, type Optimizer } from './optim/index.js';
import {
  CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, OneCycleLR, SequentialLR, StepLR, type LRScheduler, type Scheduler,
} from './schedule.js';
import { loadModelWeights, type LoadWeightsReport } from '../models/weights.js';
import { loadPretrained } from '../models/pretrained.js';
import { RecipeError, type Recipe } from './recipe.js';
import type { ClassifierModule } from './evaluate.js';

export interface BuiltModel {
  model: ClassifierModule;
  config: ModelConfig;
  /** what loading recipe.init or the pretrained weights did (null without either) */
  init: LoadWeightsReport | null;
}

/** weights: false builds the model only (a resumed run, whose checkpoint holds the weights) */
export function buildModel(r: Recipe, numClasses: number, inChannels: number, o: { weights?: boolean } = {}): BuiltModel {
  const entry = modelEntry(r.model);
  const model = createModel(r.model, { ...r.modelOptions, numClasses, inChannels }) as ClassifierModule;
  const m = model as Module<never[], unknown>;
  try {
    // ImageNet weights onto the data at hand: a new head, and a stem adapted to gray images
    const init = r.init ? loadModelWeights(m, r.init, { ignoreMismatchedHead: r.replaceHead, adaptInputConv: true })
      : r.pretrained && o.weights !== false ? loadPretrained(m, r.model, { ignoreMismatchedHead: r.replaceHead }) : null;
    return { model, config: entry.config, init };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export interface Head {
  /** the classifier's module name ('fc', 'classifier.1', ...) */
  name: string;
  params: Set<Parameter>;
}

/** The classifier: the last Linear layer (else the last module with parameters). */
export function findHead(model: Module<never[], unknown> | ClassifierModule): Head {
  const mods = (model as Module<unknown[], unknown>).namedModules();
  let pick = [...mods].reverse().find(([, m]) => m instanceof Linear);
  pick ??= [...mods].reverse().find(([, m]) => m.ownParameters().length > 0);
  if (!pick) return { name: '', params: new Set() };
  return { name: pick[0], params: new Set(pick[1].parameters()) };
}

export interface GroupSpec {
  params: Parameter[];
  lr: number;
  weightDecay: number;
  /** 'backbone' | 'head' and whether it is decayed, for logs */
  label: string;
}

/**
 * Parameter groups: backbone and head (each its own lr), each split into decayed weights and
 * undecayed biases / norm weights (ndim <= 1) unless decayNormAndBias. Empty groups are left out.
 */
export function buildParamGroups(model: ClassifierModule, r: Recipe, head: Head): GroupSpec[] {
  const groups = new Map<string, GroupSpec>();
  for (const [, p] of model.namedParameters()) {
    // weights the model keeps fixed (airbench's whitening) are not trained
    if (!p.requiresGrad) continue;
    const isHead = head.params.has(p);
    const decayed = r.decayNormAndBias || p.ndim > 1;
    const label = `${isHead ? 'head' : 'backbone'}${decayed ? '' : ' (no decay)'}`;
    let g = groups.get(label);
    if (!g) {
      g = { params: [], lr: isHead ? r.lr : r.backboneLr ?? r.lr, weightDecay: decayed ? r.weightDecay : 0, label };
      groups.set(label, g);
    }
    g.params.push(p);
  }
  const order = ['backbone', 'backbone (no decay)', 'head', 'head (no decay)'];
  return order.map((k) => groups.get(k)).filter((g): g is GroupSpec => g !== undefined);
}

export function buildOptimizer(groups: GroupSpec[], r: Recipe): Optimizer {
  const input = groups.map((g) => ({ params: g.params, lr: g.lr, weightDecay: g.weightDecay }));
  switch (r.optimizer) {
    case 'sgd': return new SGD(input, { lr: r.lr, momentum: r.momentum, nesterov: r.nesterov && r.momentum > 0, weightDecay: r.weightDecay });
    case 'adam': return new Adam(input, { lr: r.lr, betas: r.betas, eps: r.eps, weightDecay: r.weightDecay });
    case 'adamw': return new AdamW(input, { lr: r.lr, betas: r.betas, eps: r.eps, weightDecay: r.weightDecay });
    case 'rmsprop': return new RMSprop(input, { lr: r.lr, momentum: r.momentum, eps: r.eps, weightDecay: r.weightDecay });
    default: throw new RecipeError(`unknown optimizer '${String(r.optimizer)}'`);
  }
}

const SCHEDULE_OPTIONS: Record<Recipe['schedule'], string[]> = {
  cosine: [], linear: [], constant: [],
  onecycle: ['pctStart', 'divFactor', 'finalDivFactor', 'annealStrategy', 'cycleMomentum', 'threePhase'],
  step: ['stepEpochs', 'gamma'],
  multistep: ['milestones', 'gamma'],
  exponential: ['gamma'],
};

/** Refuses scheduleOptions keys the recipe's schedule does not read, listing the valid ones. */
export function checkScheduleOptions(r: Pick<Recipe, 'schedule' | 'scheduleOptions'>): void {
  const known = SCHEDULE_OPTIONS[r.schedule];
  const unknown = Object.keys(r.scheduleOptions).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new RecipeError(`recipe: unknown scheduleOptions ${unknown.map((k) => `"${k}"`).join(', ')} for schedule '${r.schedule}'; valid: ${known.join(', ') || '(none)'}`);
  }
}

function scheduleOption<T>(r: Recipe, key: string, fallback: T, check: (v: unknown) => boolean, what: string): T {
  const v = r.scheduleOptions[key];
  if (v === undefined) return fallback;
  if (!check(v)) throw new RecipeError(`recipe: scheduleOptions.${key} for schedule '${r.schedule}' must be ${what}, got ${JSON.stringify(v)}`);
  return v as T;
}

const isPos = (v: unknown): boolean => typeof v === 'number' && v > 0 && Number.isFinite(v);

/**
 * The learning-rate schedule, stepped once per optimizer step: a linear warmup over warmupEpochs
 * (from lr * warmupFactor) then the main schedule; onecycle has its own warmup (pctStart).
 */
export function buildSchedule(opt: Optimizer, r: Recipe, stepsPerEpoch: number): Scheduler {
  checkScheduleOptions(r);
  const total = r.epochs * stepsPerEpoch;
  const warm = Math.min(total - 1, Math.round(r.warmupEpochs * stepsPerEpoch));
  if (r.schedule === 'onecycle') {
    return new OneCycleLR(opt, {
      maxLr: opt.paramGroups.map((g) => g.lr),
      totalSteps: total,
      pctStart: scheduleOption(r, 'pctStart', warm > 0 ? warm / total : 0.25, (v) => typeof v === 'number' && v > 0 && v < 1, 'a number in (0, 1)'),
      divFactor: scheduleOption(r, 'divFactor', 25, isPos, 'a positive number'),
      finalDivFactor: scheduleOption(r, 'finalDivFactor', 1e4, isPos, 'a positive number'),
      annealStrategy: scheduleOption(r, 'annealStrategy', 'cos' as 'cos' | 'linear', (v) => v === 'cos' || v === 'linear', "'cos' or 'linear'"),
      cycleMomentum: scheduleOption(r, 'cycleMomentum', r.optimizer !== 'rmsprop' && (r.optimizer !== 'sgd' || r.momentum > 0), (v) => typeof v === 'boolean', 'true or false'),
      threePhase: scheduleOption(r, 'threePhase', false, (v) => typeof v === 'boolean', 'true or false'),
    });
  }
  const mainSteps = Math.max(1, total - warm);
  const main = mainSchedule(opt, r, stepsPerEpoch, mainSteps, warm);
  if (warm <= 0) return main;
  const warmup = new LinearLR(opt, { startFactor: r.warmupFactor, endFactor: 1, totalIters: warm });
  return new SequentialLR(opt, [warmup, main], [warm]);
}

function mainSchedule(opt: Optimizer, r: Recipe, spe: number, steps: number, warm: number): LRScheduler {
  const gamma = (d: number): number => scheduleOption(r, 'gamma', d, isPos, 'a positive number');
  switch (r.schedule) {
    case 'cosine': return new CosineAnnealingLR(opt, { tMax: steps, etaMin: r.minLr });
    case 'linear': return new LinearLR(opt, { startFactor: 1, endFactor: Math.min(1, Math.max(0, r.minLr / r.lr)), totalIters: steps });
    case 'constant': return new LinearLR(opt, { startFactor: 1, endFactor: 1, totalIters: 1 });
    case 'step': {
      const every = scheduleOption(r, 'stepEpochs', Math.max(1, Math.round(r.epochs / 3)), isPos, 'a positive number of epochs');
      return new StepLR(opt, { stepSize: Math.max(1, Math.round(every * spe)), gamma: gamma(0.1) });
    }
    case 'multistep': {
      const ms = scheduleOption(r, 'milestones', [Math.round(r.epochs / 2), Math.round((3 * r.epochs) / 4)],
        (v) => Array.isArray(v) && v.every((x) => typeof x === 'number' && x >= 0), 'a list of epochs');
      // milestones count epochs from the start of the run; the schedule starts after warmup
      return new MultiStepLR(opt, { milestones: ms.map((e) => Math.max(0, Math.round(e * spe) - warm)), gamma: gamma(0.1) });
    }
    case 'exponential': return new ExponentialLR(opt, { gamma: gamma(0.9) ** (1 / spe) });
    default: throw new RecipeError(`unknown schedule '${String(r.schedule)}'`);
  }
}
