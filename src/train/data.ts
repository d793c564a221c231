// From a recipe to datasets and loaders: which dataset, which subset, which split is evaluated,
// and the preprocessing (augmentation, normalisation, mixup/cutmix) around them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  DataLoader, NORMALIZATION_STATS, Rng, cifar10, cifar100, fashionMnist, imageFolder, mnist, splitValidation, subset, synthetic,
  transformFromSpec, type Dataset, type TransformSpec,
} from '../data/index.js';
import type { ModelConfig } from '../models/index.js';
import { RecipeError, normalizeAugmentSpec, type Recipe } from './recipe.js';

export type EvalSplit = 'val' | 'test';

export interface RunData {
  train: Dataset;
  eval: Dataset;
  evalSplit: EvalSplit;
  classes: string[];
  /** [C, H, W] of the samples, C as the model takes them (gray repeated to inChannels on request) */
  inputShape: [number, number, number];
  mean: number[];
  std: number[];
  /** frees the in-memory datasets */
  dispose(): void;
}

/** the salt of --limit-test's subset; `convkit eval --limit` uses it too, so that with seed 0 both pick the same images */
export const TEST_SUBSET_SALT = 0x7e5;

/** A seeded random subset of `limit` samples (kept in dataset order), or the dataset itself. */
export function limitDataset(d: Dataset, limit: number | null, seed: number, salt: number): Dataset {
  if (limit === null || limit >= d.length) return d;
  const pick = Array.from(Rng.fromKeys(seed, salt).permutation(d.length).subarray(0, limit)).sort((a, b) => a - b);
  return subset(d, pick, `${d.name ?? 'dataset'}[${limit} of ${d.length}]`);
}

type Split = 'train' | 'test';

function folderRoots(root: string): { train: string; test: string | null } {
  for (const t of ['val', 'test', 'validation']) {
    if (fs.existsSync(path.join(root, 'train')) && fs.existsSync(path.join(root, t))) return { train: path.join(root, 'train'), test: path.join(root, t) };
  }
  return { train: root, test: null };
}

/** One split of a named dataset (the files only: no subset, no transform). */
export function openDataset(r: Pick<Recipe, 'dataset' | 'dataRoot' | 'imageSize' | 'inChannels' | 'numClasses' | 'seed' | 'limitTrain' | 'limitTest'>, split: Split, modelConfig?: ModelConfig): Dataset {
  const dir = r.dataRoot ?? undefined;
  switch (r.dataset) {
    case 'fashion-mnist': return fashionMnist({ split, dir });
    case 'mnist': return mnist({ split, dir });
    case 'cifar10': return cifar10({ dir: need(r.dataRoot, r.dataset), split });
    case 'cifar100': return cifar100({ dir: need(r.dataRoot, r.dataset), split });
    case 'synthetic': {
      // one draw split in two, so train and test share the class patterns
      const nTrain = r.limitTrain ?? 1000;
      const nTest = r.limitTest ?? 200;
      const [h, w] = r.imageSize ?? [32, 32];
      const all = synthetic({ count: nTrain + nTest, shape: [r.inChannels ?? 3, h, w], numClasses: r.numClasses ?? 10, seed: r.seed });
      const idx = Array.from({ length: nTrain + nTest }, (_, i) => i);
      const part = subset(all, split === 'train' ? idx.slice(0, nTrain) : idx.slice(nTrain), `synthetic/${split}`);
      return Object.assign(part, { dispose: () => all.dispose() });
    }
    case 'folder': {
      const roots = folderRoots(need(r.dataRoot, r.dataset));
      const root = split === 'train' ? roots.train : roots.test;
      if (root === null) throw new RecipeError(`dataset folder ${r.dataRoot}: has no train/ and val/ (or test/) subfolders; give a validation fraction (--val-fraction) to hold out part of it`);
      const size = r.imageSize ?? (modelConfig ? [modelConfig.inputSize[1], modelConfig.inputSize[2]] as [number, number] : [224, 224]);
      const channels = (r.inChannels ?? 3) === 1 ? 1 : 3;
      return imageFolder({ root, size, channels });
    }
    default:
      throw new RecipeError(`unknown dataset '${r.dataset}'`);
  }
}

function need(v: string | null, dataset: string): string {
  if (!v) throw new RecipeError(`dataset '${dataset}' needs dataRoot (--data-root): the folder that holds its files`);
  return v;
}

/** The normalisation of a run: explicit, else the dataset's statistics, else the model's. */
export function normalization(r: Pick<Recipe, 'mean' | 'std' | 'dataset' | 'init'> & Partial<Pick<Recipe, 'pretrained'>>, channels: number, modelConfig?: ModelConfig): { mean: number[]; std: number[] } {
  // weights trained elsewhere expect their own normalisation (ImageNet's), averaged for gray images
  const stats = r.mean && r.std ? { mean: r.mean, std: r.std }
    : !r.init && !r.pretrained && NORMALIZATION_STATS[r.dataset] ? NORMALIZATION_STATS[r.dataset]!
      : modelConfig ? { mean: modelConfig.mean, std: modelConfig.std } : { mean: [0.5], std: [0.5] };
  const fit = (v: number[]): number[] => {
    if (v.length === channels || v.length === 1) return [...v];
    if (channels === 1) return [v.reduce((a, b) => a + b, 0) / v.length];
    throw new RecipeError(`normalisation has ${v.length} values but the images have ${channels} channels`);
  };
  return { mean: fit(stats.mean), std: fit(stats.std) };
}

/** Train and evaluation datasets of a recipe, subsets and validation split applied. */
export function buildRunData(r: Recipe, modelConfig?: ModelConfig): RunData {
  const fullTrain = openDataset(r, 'train', modelConfig);
  const owned: Dataset[] = [fullTrain];
  try {
    let train: Dataset;
    let evalSet: Dataset;
    let evalSplit: EvalSplit;
    if (r.valFraction > 0) {
      const limited = limitDataset(fullTrain, r.limitTrain === null ? null : Math.ceil(r.limitTrain / (1 - r.valFraction)), r.seed, 0x117);
      const split = splitValidation(limited, r.valFraction, r.seed);
      train = split.train;
      evalSet = split.val;
      evalSplit = 'val';
    } else {
      train = limitDataset(fullTrain, r.limitTrain, r.seed, 0x117);
      const test = openDataset(r, 'test', modelConfig);
      owned.push(test);
      evalSet = limitDataset(test, r.limitTest, r.seed, TEST_SUBSET_SALT);
      evalSplit = 'test';
    }
    const classes = [...fullTrain.classes];
    // what the model sees: gray images repeated to colour on request
    const [c, h, w] = fullTrain.inputShape;
    const inputShape: [number, number, number] = [repeatsGray(r) && c === 1 ? r.inChannels! : c, h, w];
    const { mean, std } = normalization(r, inputShape[0], modelConfig);
    return {
      train, eval: evalSet, evalSplit, classes, inputShape, mean, std,
      dispose: () => { for (const d of owned) d.dispose?.(); },
    };
  } catch (e) {
    for (const d of owned) d.dispose?.();
    throw e;
  }
}

/** datasets whose images are decoded at imageSize already; the others are resized as batches */
const DECODED_AT_SIZE = new Set(['folder', 'synthetic']);

/**
 * imageSize for a dataset of fixed-size images (Fashion-MNIST, CIFAR): a resize of each batch
 * (bilinear, antialiased when shrinking), first in the pipeline so augmentation works at the
 * model's resolution: ImageNet weights at 224 px on 28 px images.
 */
export function resizeSpecs(r: { imageSize?: [number, number] | null; dataset?: string }): TransformSpec[] {
  if (!r.imageSize || DECODED_AT_SIZE.has(r.dataset ?? '')) return [];
  return [{ name: 'resize', size: [...r.imageSize], mode: 'bilinear', antialias: true }];
}

/** datasets of gray images that inChannels > 1 repeats to colour */
const GRAY_DATASETS = new Set(['fashion-mnist', 'mnist']);

/** Whether the run repeats the dataset's gray images to inChannels (--in-channels 3 on Fashion-MNIST). */
export function repeatsGray(r: { inChannels?: number | null; dataset?: string }): boolean {
  return (r.inChannels ?? 1) > 1 && GRAY_DATASETS.has(r.dataset ?? '');
}

/** The dataset's images as the model takes them: resized to imageSize, gray repeated to inChannels. */
export function inputSpecs(r: { imageSize?: [number, number] | null; dataset?: string; inChannels?: number | null }): TransformSpec[] {
  return [...resizeSpecs(r), ...(repeatsGray(r) ? [{ name: 'repeatChannels', channels: r.inChannels! } as TransformSpec] : [])];
}

/** The transform specs of training: resizing, augmentation, normalisation, then mixup / cutmix. */
export function trainTransforms(r: Recipe, mean: number[], std: number[], numClasses: number): TransformSpec[] {
  const specs = [...inputSpecs(r), ...r.augment.map((a) => normalizeAugmentSpec(a) as TransformSpec)];
  specs.push({ name: 'normalize', mean, std });
  const common = { numClasses, labelSmoothing: r.labelSmoothing, p: r.mixProb };
  if (r.mixup > 0 && r.cutmix > 0) specs.push({ name: 'mixupCutmix', mixupAlpha: r.mixup, cutmixAlpha: r.cutmix, switchProb: r.mixSwitchProb, ...common });
  else if (r.mixup > 0) specs.push({ name: 'mixup', alpha: r.mixup, ...common });
  else if (r.cutmix > 0) specs.push({ name: 'cutmix', alpha: r.cutmix, ...common });
  return specs;
}

/** Builds every spec once so a bad augment name or option fails before training starts. */
export function checkTransforms(specs: TransformSpec[]): void {
  for (const s of specs) {
    try {
      transformFromSpec(s);
    } catch (e) {
      throw new RecipeError(`recipe augment: ${(e as Error).message}`);
    }
  }
}

/** shard: data-parallel runs, this process's share of every (global) batch */
export function trainLoader(d: RunData, r: Recipe, numClasses: number, shard?: { rank: number; worldSize: number }): DataLoader {
  return new DataLoader(d.train, {
    batchSize: r.batchSize, shuffle: true, seed: r.seed, transform: trainTransforms(r, d.mean, d.std, numClasses), training: true, prefetch: r.prefetch, shard,
  });
}

/** Evaluation: the same pipeline in its evaluation form (random crops become centre crops, no mixing). */
export function evalLoader(dataset: Dataset, r: Pick<Recipe, 'evalBatchSize' | 'augment' | 'prefetch' | 'seed'> & Partial<Pick<Recipe, 'imageSize' | 'dataset' | 'inChannels'>>, mean: number[], std: number[]): DataLoader {
  const specs = [...inputSpecs(r), ...r.augment.map((a) => normalizeAugmentSpec(a) as TransformSpec), { name: 'normalize', mean, std } as TransformSpec];
  return new DataLoader(dataset, { batchSize: r.evalBatchSize, shuffle: false, seed: r.seed, transform: specs, training: false, prefetch: r.prefetch });
}
