// Training recipes: every knob of a run in one JSON-able object. A recipe file (JSON or YAML)
// or command-line options give part of it; resolveRecipe fills in the defaults and checks every
// key, naming any unknown one and listing the valid keys.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MAX_BATCH, MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIDE, MAX_THREADS } from '../engine/limits.js';
import { parseJson } from '../io/json.js';
import { readInputFile } from '../io/files.js';
import { bool, describeValue, int, isNum, num, numList, obj, oneOf, orNull, pairOf, str, type Check } from './checks.js';

export type OptimizerName = 'sgd' | 'adam' | 'adamw' | 'rmsprop';
export type ScheduleName = 'cosine' | 'onecycle' | 'step' | 'multistep' | 'exponential' | 'linear' | 'constant';
/**
 * A transform as the data layer's transformFromSpec reads it ({"name": "randomCrop", "size": 28,
 * "padding": 2}), or two shorthands: a bare name ("randomHorizontalFlip") and {name: options}
 * ({"randomCrop": {"size": 28, "padding": 2}}).
 */
export type AugmentSpec = string | Record<string, unknown>;

export interface Recipe {
  /** a registered model name (convkit models) */
  model: string;
  /** extra builder options (dropRate, dropPathRate, zeroInitResidual, ...) */
  modelOptions: Record<string, unknown>;
  /** null: the dataset's class count */
  numClasses: number | null;
  /** null: the dataset's channel count */
  inChannels: number | null;

  /** 'fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'synthetic' or 'folder' */
  dataset: string;
  /** folder of the dataset files (cifar, folder: required; mnist-layout: optional) */
  dataRoot: string | null;
  /** image folders: [height, width] to decode to; null: the model's input size */
  imageSize: [number, number] | null;
  /** use only this many training / test images (a seeded random subset); null: all */
  limitTrain: number | null;
  limitTest: number | null;
  /** fraction of train held out for validation (0: evaluate on the test split) */
  valFraction: number;

  epochs: number;
  batchSize: number;
  evalBatchSize: number;

  optimizer: OptimizerName;
  lr: number;
  /** fine-tuning: the backbone's learning rate (null: lr); the head always uses lr */
  backboneLr: number | null;
  momentum: number;
  nesterov: boolean;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** no weight decay on biases and normalisation weights (timm's default) */
  decayNormAndBias: boolean;

  schedule: ScheduleName;
  /** schedule-specific: stepEpochs, milestones (epochs), gamma, pctStart, divFactor, finalDivFactor */
  scheduleOptions: Record<string, unknown>;
  warmupEpochs: number;
  /** warmup starts at lr * warmupFactor */
  warmupFactor: number;
  /** the lr cosine/linear decay ends at */
  minLr: number;

  labelSmoothing: number;
  /** training-time transforms, in order (uint8 images in; normalisation is added after them) */
  augment: AugmentSpec[];
  /** per-channel normalisation (null: the dataset's statistics, or the model's for init weights) */
  mean: number[] | null;
  std: number[] | null;
  /** mixup alpha (0: off) */
  mixup: number;
  /** cutmix alpha (0: off) */
  cutmix: number;
  /** probability of applying mixup/cutmix to a batch */
  mixProb: number;
  /** when both are on: the probability of cutmix rather than mixup */
  mixSwitchProb: number;

  /** EMA decay of the weights (0: off), e.g. 0.999 */
  ema: number;
  /** clip the global gradient norm to this (0: off) */
  clipGradNorm: number;
  /** the final evaluation averages the logits of each image and its horizontal mirror (flip TTA) */
  evalFlip: boolean;
  /** the final evaluation also averages the views shifted diagonally by +-N pixels (0: off) */
  evalTranslate: number;
  /** bfloat16 autocast: true, false or 'auto' (off unless the CPU has avx512_bf16 / amx; there, on if a timed training step is 1.1x faster in bf16) */
  bf16: boolean | 'auto';
  /** channels-last memory format: true, false or 'auto' (on: faster on CPUs in fp32 and bf16 alike) */
  channelsLast: boolean | 'auto';

  seed: number;
  /** null: runs/<model>-<dataset>-<timestamp> */
  outDir: string | null;
  /** libtorch threads (null: all cores) */
  threads: number | null;
  /** batches prepared ahead of the training step */
  prefetch: number;
  /** data-parallel runs: BatchNorm statistics over the global batch (SyncBatchNorm) rather than each process's share */
  syncBatchNorm: boolean;

  /** transfer learning: weights to start from (model.safetensors, a checkpoint, a .pth) */
  init: string | null;
  /**
   * transfer learning: start from torchvision's published ImageNet weights for the model
   * (downloaded once into the cache; the head replaced, a stem for gray images adapted)
   */
  pretrained: boolean;
  /** when init's classifier has another class count, start the head afresh */
  replaceHead: boolean;
  /** train only the head for the first N epochs */
  freezeBackboneEpochs: number;

  /** knowledge distillation: the teacher (a checkpoint, model.safetensors or .onnx; null: none) */
  teacher: string | null;
  /** the weight of the distillation term: loss = (1 − α)·hard + α·T²·KL */
  distillAlpha: number;
  /** the temperature T that softens both distributions */
  distillTemperature: number;

  /**
   * quantization-aware training: convolutions and linear layers compute with int8 weights on
   * uint8 inputs (fake quantization, straight-through gradients), in float32, so that `convkit
   * quantize` of the result loses less; start it from a trained model (init)
   */
  qat: boolean;

  /** misclassified test images shown in report.html */
  reportImages: number;
}

/**
 * The default recipe: airbench's small net on Fashion-MNIST, aiming at 94% test accuracy in
 * under 10 minutes on 2 cores without bfloat16 (9 epochs of 40-60 s on an AVX2 machine). Short
 * runs want little augmentation: the mirror alone (random 2-pixel crops cost 0.5 points at 8
 * epochs), label smoothing 0.2 as airbench, and flip test-time augmentation at the end.
 */
const DEFAULTS: Recipe = {
  model: 'airbench_m',
  modelOptions: {},
  numClasses: 10,
  inChannels: 1,
  dataset: 'fashion-mnist',
  dataRoot: null,
  imageSize: null,
  limitTrain: null,
  limitTest: null,
  valFraction: 0,
  epochs: 9,
  batchSize: 256,
  evalBatchSize: 500,
  optimizer: 'sgd',
  lr: 0.2,
  backboneLr: null,
  momentum: 0.9,
  nesterov: true,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 5e-4,
  decayNormAndBias: false,
  schedule: 'cosine',
  scheduleOptions: {},
  warmupEpochs: 1,
  warmupFactor: 0.1,
  minLr: 0,
  labelSmoothing: 0.2,
  augment: [{ name: 'randomHorizontalFlip' }],
  mean: null,
  std: null,
  mixup: 0,
  cutmix: 0,
  mixProb: 1,
  mixSwitchProb: 0.5,
  ema: 0,
  clipGradNorm: 0,
  evalFlip: true,
  evalTranslate: 0,
  bf16: 'auto',
  channelsLast: 'auto',
  seed: 0,
  outDir: null,
  threads: null,
  prefetch: 2,
  syncBatchNorm: false,
  init: null,
  pretrained: false,
  replaceHead: true,
  freezeBackboneEpochs: 0,
  teacher: null,
  distillAlpha: 0.5,
  distillTemperature: 4,
  qat: false,
  reportImages: 36,
};
export const DEFAULT_RECIPE: Readonly<Recipe> = Object.freeze(DEFAULTS);

export const RECIPE_KEYS = Object.keys(DEFAULT_RECIPE) as (keyof Recipe)[];
export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'synthetic', 'folder'] as const;
const OPTIMIZERS: OptimizerName[] = ['sgd', 'adam', 'adamw', 'rmsprop'];
const SCHEDULES: ScheduleName[] = ['cosine', 'onecycle', 'step', 'multistep', 'exponential', 'linear', 'constant'];

/** A recipe that cannot run: names the key, what it holds and what was expected. */
export class RecipeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecipeError';
  }
}

const boolAuto: Check = (v) => (typeof v === 'boolean' || v === 'auto' ? null : "true, false or 'auto'");
const augments: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string' || (s !== null && typeof s === 'object' && !Array.isArray(s)))
  ? null : 'a list of transform specs (names or {name: options})');

// A recipe comes from a file or a checkpoint: 10^12 classes or 10^6 threads must be an error
// naming the key, not a crash; sizes that reach an allocation or libtorch are bounded (engine/limits).
// augment: [{name: {options}}] is 3 deep; model options may nest a little more
const MAX_RECIPE_DEPTH = 16;

const CHECKS: Record<keyof Recipe, Check> = {
  model: str, modelOptions: obj, numClasses: orNull(int(1, MAX_CLASSES)), inChannels: orNull(int(1, MAX_CHANNELS)),
  dataset: oneOf(DATASETS), dataRoot: orNull(str), imageSize: orNull(pairOf(int(1, MAX_IMAGE_SIDE), `a pair [height, width] of integers in 1..${MAX_IMAGE_SIDE}`)),
  limitTrain: orNull(int(1)), limitTest: orNull(int(1)), valFraction: (v) => (isNum(v) && v >= 0 && v < 1 ? null : 'a number in [0, 1)'),
  epochs: int(1, 1_000_000), batchSize: int(1, MAX_BATCH), evalBatchSize: int(1, MAX_BATCH),
  optimizer: oneOf(OPTIMIZERS), lr: num(0, Infinity, true), backboneLr: orNull(num(0)), momentum: num(0, 1), nesterov: bool,
  betas: pairOf(num(0, 1), 'a pair [beta1, beta2] of numbers in [0, 1]'), eps: num(0), weightDecay: num(0), decayNormAndBias: bool,
  schedule: oneOf(SCHEDULES), scheduleOptions: obj, warmupEpochs: num(0), warmupFactor: num(0, 1, true), minLr: num(0),
  labelSmoothing: (v) => (isNum(v) && v >= 0 && v < 1 ? null : 'a number in [0, 1)'),
  augment: augments, mean: orNull(numList), std: orNull(numList), mixup: num(0), cutmix: num(0), mixProb: num(0, 1), mixSwitchProb: num(0, 1),
  ema: (v) => (isNum(v) && v >= 0 && v < 1 ? null : 'a number in [0, 1) (0: off)'), clipGradNorm: num(0),
  evalFlip: bool, evalTranslate: int(0, MAX_IMAGE_SIDE), bf16: boolAuto, channelsLast: boolAuto,
  seed: int(0), outDir: orNull(str), threads: orNull(int(1, MAX_THREADS)), prefetch: int(0, 64), syncBatchNorm: bool,
  init: orNull(str), pretrained: bool, replaceHead: bool, freezeBackboneEpochs: int(0),
  teacher: orNull(str), distillAlpha: num(0, 1), distillTemperature: num(0, 1000, true), qat: bool, reportImages: int(0, 10_000),
};

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

/** Keys close to a misspelt one: same letters ignoring case, '-' and '_', or at most 2 edits away. */
export function suggest(key: string, keys: readonly string[]): string[] {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const scored = keys.map((k) => ({ k, d: norm(k) === norm(key) ? 0 : editDistance(norm(k), norm(key)) })).filter((x) => x.d <= 2);
  return scored.sort((a, b) => a.d - b.d).map((x) => x.k);
}

/** Throws naming the first unknown key (with the valid keys) or the first bad value. */
export function checkRecipe(r: Record<string, unknown>, source = 'recipe'): void {
  for (const key of Object.keys(r)) {
    if (!(key in CHECKS)) {
      const close = suggest(key, RECIPE_KEYS);
      throw new RecipeError(`${source}: unknown key ${describeValue(key)}${close.length ? ` (did you mean "${close[0]}"?)` : ''}; valid keys are: ${RECIPE_KEYS.join(', ')}`);
    }
    const problem = CHECKS[key as keyof Recipe](r[key]);
    if (problem) throw new RecipeError(`${source}: "${key}" must be ${problem}, got ${describeValue(r[key])}`);
  }
}

/** The recipe actually used: defaults, then each layer of overrides in order, all checked. */
export function resolveRecipe(...layers: (Partial<Recipe> | Record<string, unknown>)[]): Recipe {
  const out: Record<string, unknown> = structuredClone({ ...DEFAULT_RECIPE });
  for (const layer of layers) {
    checkRecipe(layer);
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) out[k] = structuredClone(v);
  }
  const r = out as unknown as Recipe;
  if (r.dataset !== DEFAULT_RECIPE.dataset && !layers.some((l) => 'inChannels' in l)) r.inChannels = null;
  if (r.dataset !== DEFAULT_RECIPE.dataset && !layers.some((l) => 'numClasses' in l)) r.numClasses = null;
  if (r.pretrained && r.init) throw new RecipeError(`recipe: pretrained and init both give starting weights (init: ${r.init}); choose one`);
  if (r.warmupEpochs > r.epochs) throw new RecipeError(`recipe: warmupEpochs (${r.warmupEpochs}) is longer than the run (${r.epochs} epochs)`);
  if ((r.dataset === 'cifar10' || r.dataset === 'cifar100' || r.dataset === 'folder') && !r.dataRoot) {
    throw new RecipeError(`recipe: dataset "${r.dataset}" needs dataRoot (--data-root), the folder holding its files`);
  }
  if ((r.mean === null) !== (r.std === null)) throw new RecipeError('recipe: give both mean and std, or neither');
  r.augment = r.augment.map(normalizeAugmentSpec);
  return r;
}

/** Any accepted augment form -> {name, ...options}. */
export function normalizeAugmentSpec(a: AugmentSpec): Record<string, unknown> & { name: string } {
  if (typeof a === 'string') return { name: a };
  if (typeof a.name === 'string') return a as Record<string, unknown> & { name: string };
  const keys = Object.keys(a);
  const opts = a[keys[0]];
  if (keys.length === 1 && (opts === null || opts === undefined || (typeof opts === 'object' && !Array.isArray(opts)))) {
    return { name: keys[0], ...(opts as Record<string, unknown> | null ?? {}) };
  }
  throw new RecipeError(`recipe: augment entry ${JSON.stringify(a)} must be a name, {"name": ..., options} or {name: {options}}`);
}

/** Reads a recipe file: .json, or .yaml / .yml. Keys are checked. */
export function loadRecipeFile(file: string): Partial<Recipe> {
  const text = readInputFile(file, { what: 'recipe', maxBytes: 1 << 20, fail: (m) => new RecipeError(`recipe file ${file}: ${m}`) }).toString('utf8');
  let data: unknown;
  try {
    data = /\.ya?ml$/i.test(file) ? parseYaml(text) : parseJson(text, MAX_RECIPE_DEPTH);
  } catch (e) {
    throw new RecipeError(`recipe file ${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new RecipeError(`recipe file ${file}: expected a mapping of recipe keys, got ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}`);
  }
  checkRecipe(data as Record<string, unknown>, `recipe file ${file}`);
  return data as Partial<Recipe>;
}

/** runs/<model>-<dataset>-<YYYYmmdd-HHMMSS> */
export function defaultOutDir(r: Recipe, now = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return path.join('runs', `${r.model}-${r.dataset}-${stamp}`);
}
