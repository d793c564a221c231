// Evaluates a checkpoint on a dataset: what `convkit eval` does. The model and its input
// preprocessing come from the file when convkit wrote it (a training checkpoint's recipe, or
// model.safetensors' metadata); for other files (timm / torchvision weights) name the model.
import * as fs from 'node:fs';
import { MAX_IMAGE_SIDE } from '../engine/limits.js';
import type { Module } from '../nn/index.js';
import { createModel, modelEntry } from '../models/index.js';
import { parseSafetensorsHeader } from '../io/index.js';
import { CHECKPOINT_FORMAT, CheckpointError, loadModelWeights } from '../models/weights.js';
import { readCheckpointMeta } from './checkpoint.js';
import { evalLoader, limitDataset, normalization, openDataset, repeatsGray, TEST_SUBSET_SALT } from './data.js';
import { evaluate, type ClassifierModule, type EvalResult } from './evaluate.js';
import { DATASETS, RecipeError, type AugmentSpec } from './recipe.js';
import type { ClassReport } from './metrics.js';
import { checkTrainState } from './train_state.js';

export interface EvalCheckpointOptions {
  /** the model name (required for files convkit did not write) */
  model?: string;
  /** builder options for such files (numClasses defaults to the dataset's) */
  numClasses?: number;
  dataRoot?: string;
  split?: 'train' | 'test';
  /** evaluate a seeded random subset of n images (those `convkit train --limit-test n` picks with seed 0) */
  limit?: number;
  batchSize?: number;
  /** training checkpoints: evaluate the EMA weights */
  ema?: boolean;
  /** bfloat16 autocast (default: as the run evaluated; off for files convkit did not write) */
  bf16?: boolean;
  /** channels-last inputs (default: as the run evaluated; off for files convkit did not write) */
  channelsLast?: boolean;
  /** test-time augmentation: average each image's logits with its mirror's */
  flip?: boolean;
  /** test-time augmentation: also average the views shifted by +-translate pixels (0: off) */
  translate?: number;
  imageSize?: [number, number];
  onBatch?: (done: number, total: number) => void;
}

export interface CheckpointEvaluation {
  checkpoint: string;
  model: string;
  dataset: string;
  split: 'train' | 'test';
  weights: 'model' | 'ema';
  /** the test-time augmentation used */
  tta: { flip: boolean; translate: number };
  classes: string[];
  result: EvalResult;
  report: ClassReport;
}

/** What a weights file says of the model in it (see describeWeightsFile). */
export interface WeightsSource {
  model: string;
  /** the dataset the run trained on (convkit's files), else null */
  dataset: string | null;
  imageSize: [number, number] | null;
  classes: string[] | null;
  modelOptions: Record<string, unknown>;
  mean: number[] | null;
  std: number[] | null;
  augment: AugmentSpec[];
  training: boolean;
  /** how the run evaluated (bf16 autocast, channels-last); plain fp32 for files convkit did not write */
  precision: Precision;
}

interface Precision {
  bf16: boolean;
  channelsLast: boolean;
}

const PLAIN: Precision = { bf16: false, channelsLast: false };

/**
 * The model, its options and its input preprocessing as a weights file records them: a training
 * checkpoint's recipe, model.safetensors' metadata, or (other files) only the model o.model names.
 */
export function describeWeightsFile(file: string, o: { model?: string }): WeightsSource {
  if (!fs.existsSync(file)) throw new CheckpointError(file, 'no such file');
  let meta: Record<string, string> | undefined;
  try {
    meta = parseSafetensorsHeader(file).metadata;
  } catch (e) {
    if (!o.model) throw e; // a .pth: the model must be named
  }
  if (meta?.format === CHECKPOINT_FORMAT) {
    const s = checkTrainState(file, readCheckpointMeta(file));
    const r = s.recipe;
    return {
      model: o.model ?? r.model, dataset: r.dataset, imageSize: r.imageSize, classes: s.classes,
      modelOptions: { ...r.modelOptions, numClasses: r.numClasses ?? s.classes.length, inChannels: r.inChannels ?? undefined },
      mean: s.normalization.mean, std: s.normalization.std, augment: r.augment, training: true,
      precision: { bf16: r.bf16 === true, channelsLast: r.channelsLast === true },
    };
  }
  if (meta?.convkit_model) {
    const parse = (k: string): unknown => {
      try {
        return meta![k] ? JSON.parse(meta![k]) : undefined;
      } catch {
        throw new CheckpointError(file, `metadata ${k} is not valid JSON`);
      }
    };
    const norm = parse('convkit_normalization') as { mean: number[]; std: number[] } | undefined;
    const precision = { ...PLAIN, ...(parse('convkit_precision') as Partial<Precision> | undefined) };
    if (typeof precision.bf16 !== 'boolean' || typeof precision.channelsLast !== 'boolean') {
      throw new CheckpointError(file, 'metadata convkit_precision must be {"bf16": boolean, "channelsLast": boolean}');
    }
    const classes = parse('convkit_classes');
    const size = parse('convkit_image_size');
    const isSide = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_IMAGE_SIDE;
    if (size !== undefined && !(Array.isArray(size) && size.length === 2 && size.every(isSide))) {
      throw new CheckpointError(file, `metadata convkit_image_size must be [height, width] in 1..${MAX_IMAGE_SIDE}, got ${JSON.stringify(size).slice(0, 80)}`);
    }
    return {
      model: o.model ?? meta.convkit_model, dataset: meta.convkit_dataset ?? null, imageSize: (size as [number, number] | undefined) ?? null,
      classes: Array.isArray(classes) && classes.every((c) => typeof c === 'string') ? classes : null, modelOptions: (parse('convkit_model_options') ?? {}) as Record<string, unknown>,
      mean: norm?.mean ?? null, std: norm?.std ?? null, augment: [], training: false, precision,
    };
  }
  if (!o.model) throw new CheckpointError(file, 'it does not say which model it holds (convkit did not write it): give --model');
  return { model: o.model, dataset: null, imageSize: null, classes: null, modelOptions: {}, mean: null, std: null, augment: [], training: false, precision: PLAIN };
}

/** The [height, width] a weights file's model was trained on: its recipe's, else its dataset's, else null. */
export const trainedImageSize = (src: WeightsSource): [number, number] | null => src.imageSize ?? datasetImages(src.dataset, null).size;

/** The images a dataset holds: [channels, height, width] (null: they take the model's size). */
function datasetImages(dataset: string | null, inChannels: number | null): { channels: number | null; size: [number, number] | null } {
  switch (dataset) {
    case 'fashion-mnist': case 'mnist': return { channels: 1, size: [28, 28] };
    case 'cifar10': case 'cifar100': return { channels: 3, size: [32, 32] };
    case 'synthetic': return { channels: inChannels ?? 3, size: [32, 32] };
    default: return { channels: inChannels, size: null };
  }
}

export interface OpenedModel {
  model: ClassifierModule;
  name: string;
  /** the input the model was trained on: channels, [height, width], normalisation */
  channels: number;
  size: [number, number];
  mean: number[];
  std: number[];
  classes: string[] | null;
}

/**
 * A model ready to run on images, from a weights file: a convkit checkpoint or model.safetensors
 * (model, options, input size and normalisation from the file), or other weights with o.model named
 * (the model's own configuration). numClasses for such files defaults to the model's.
 */
export function openModelFile(file: string, o: { model?: string; numClasses?: number; ema?: boolean } = {}): OpenedModel {
  const src = describeWeightsFile(file, o);
  const entry = modelEntry(src.model);
  const opts = src.modelOptions as { numClasses?: number; inChannels?: number };
  const data = datasetImages(src.dataset, opts.inChannels ?? null);
  const channels = opts.inChannels ?? data.channels ?? entry.config.inputSize[0];
  const size = src.imageSize ?? data.size ?? [entry.config.inputSize[1], entry.config.inputSize[2]];
  const numClasses = o.numClasses ?? opts.numClasses ?? (src.classes ? src.classes.length : undefined);
  const { mean, std } = normalization({ mean: src.mean, std: src.std, dataset: src.dataset ?? '', init: src.mean ? null : file }, channels, entry.config);
  const model = createModel(src.model, { ...src.modelOptions, ...(numClasses ? { numClasses } : {}), inChannels: channels }) as ClassifierModule;
  try {
    loadModelWeights(model as Module<never[], unknown>, file, { prefer: o.ema ? 'ema' : 'model' });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, name: src.model, channels, size, mean, std, classes: src.classes };
}

export async function evaluateCheckpoint(file: string, dataset: string, o: EvalCheckpointOptions = {}): Promise<CheckpointEvaluation> {
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new RecipeError(`unknown dataset '${dataset}': expected one of ${DATASETS.join(', ')}`);
  const src = describeWeightsFile(file, o);
  if (o.ema && !src.training) throw new RecipeError(`--ema needs a training checkpoint (last.safetensors / best.safetensors), not ${file}`);
  const entry = modelEntry(src.model);
  const split = o.split ?? 'test';
  const spec = {
    dataset, dataRoot: o.dataRoot ?? null, imageSize: o.imageSize ?? null, inChannels: (src.modelOptions.inChannels as number | undefined) ?? null,
    numClasses: o.numClasses ?? (src.modelOptions.numClasses as number | undefined) ?? null, seed: 0, limitTrain: null, limitTest: null,
  };
  const full = openDataset(spec, split, entry.config);
  try {
    const data = limitDataset(full, o.limit ?? null, 0, TEST_SUBSET_SALT);
    // a model trained on gray images repeated to colour (--in-channels 3 on Fashion-MNIST) gets them so again
    const channels = spec.inChannels !== null && full.inputShape[0] === 1 && repeatsGray({ inChannels: spec.inChannels, dataset }) ? spec.inChannels : full.inputShape[0];
    const numClasses = spec.numClasses ?? full.classes.length;
    if (numClasses < full.classes.length) {
      throw new RecipeError(`the model has ${numClasses} outputs but ${dataset} has ${full.classes.length} classes`);
    }
    if (spec.inChannels !== null && spec.inChannels !== channels) {
      throw new RecipeError(`the model takes ${spec.inChannels}-channel images but ${dataset} has ${channels}-channel images`);
    }
    const { mean, std } = normalization({ mean: src.mean, std: src.std, dataset, init: src.training || src.mean ? null : file }, channels, entry.config);
    const model = createModel(src.model, { ...src.modelOptions, numClasses, inChannels: channels }) as ClassifierModule;
    try {
      loadModelWeights(model as Module<never[], unknown>, file, { prefer: o.ema ? 'ema' : 'model' });
      const loader = evalLoader(data, { evalBatchSize: o.batchSize ?? 500, augment: src.augment, prefetch: 2, seed: 0, imageSize: o.imageSize ?? src.imageSize ?? null, dataset, inChannels: channels }, mean, std);
      const tta = { flip: o.flip ?? false, translate: o.translate ?? 0 };
      const precision = { bf16: o.bf16 ?? src.precision.bf16, channelsLast: o.channelsLast ?? src.precision.channelsLast };
      const result = await evaluate(model, loader, { numClasses, ...precision, ...tta, onBatch: o.onBatch });
      return {
        checkpoint: file, model: src.model, dataset, split, weights: o.ema ? 'ema' : 'model', tta, classes: full.classes,
        result, report: result.confusion.report(full.classes),
      };
    } finally {
      model.dispose();
    }
  } finally {
    full.dispose?.();
  }
}
