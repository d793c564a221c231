// What `convkit export` exports: a training checkpoint, a model.safetensors, a run folder (its
// model.safetensors, else best, else last) or a registered model name, turned into a model with
// its weights, an example input, and the metadata a predictor needs (classes, input size,
// normalisation, resize and crop).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randint, randn, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { IMAGENET_CLASSES, createModel, exampleInput, loadPretrained, modelEntry, pretrainedEntry, type ModelEntry, type PretrainedEntry } from '../models/index.js';
import { CheckpointError, loadModelWeights } from '../models/weights.js';
import { describeWeightsFile, trainedImageSize } from '../train/eval_checkpoint.js';
import type { ExportMetadata } from './export.js';

export interface ExportSourceOptions {
  /** the registered model, for weights files convkit did not write */
  model?: string;
  numClasses?: number;
  /** [height, width] of the exported input (image models) */
  imageSize?: [number, number];
  /** training checkpoints: export the EMA weights */
  ema?: boolean;
  /**
   * a registered model name: torchvision's published ImageNet weights (from the cache, or
   * downloaded there; fetch them first with models' fetchPretrained for a progress bar)
   */
  pretrained?: boolean;
}

export interface ExportSource {
  model: Module<never[], unknown>;
  /** one input batch of the right shape and dtype */
  example: Tensor;
  metadata: ExportMetadata;
  /** the weights file read (the cached file of pretrained weights), or null for a fresh (randomly initialised) registered model */
  weights: string | null;
}


interface Described {
  name: string;
  options: Record<string, unknown>;
  classes?: string[];
  mean?: number[];
  std?: number[];
  size?: [number, number];
  file: string | null;
  /** the published weights' evaluation transform (resize, crop, interpolation) */
  pretrained?: PretrainedEntry;
}

function resolveFile(spec: string): string {
  if (!fs.statSync(spec).isDirectory()) return spec;
  for (const f of ['model.safetensors', 'best.safetensors', 'last.safetensors']) {
    const p = path.join(spec, f);
    if (fs.existsSync(p)) return p;
  }
  throw new CheckpointError(spec, 'a run folder holds model.safetensors, best.safetensors or last.safetensors; none is here');
}

function describe(spec: string, o: ExportSourceOptions): Described {
  if (o.pretrained) {
    if (fs.existsSync(spec)) throw new Error(`pretrained weights are a registered model's (e.g. resnet50), but ${spec} is a file: give the model name, or drop --pretrained`);
    const entry = pretrainedEntry(spec); // a model without published weights fails here, listing those with them
    if (o.numClasses !== undefined && o.numClasses !== IMAGENET_CLASSES.length) throw new Error(`pretrained ${spec} classifies the ${IMAGENET_CLASSES.length} ImageNet classes, not ${o.numClasses}`);
    return { name: spec, options: {}, classes: [...IMAGENET_CLASSES], file: null, pretrained: entry };
  }
  if (!fs.existsSync(spec)) {
    modelEntry(spec); // an unknown name fails here, listing the known ones
    return { name: spec, options: o.numClasses ? { numClasses: o.numClasses } : {}, file: null };
  }
  const file = resolveFile(spec);
  const w = describeWeightsFile(file, o);
  return {
    name: w.model, options: w.modelOptions, classes: w.classes ?? undefined, mean: w.mean ?? undefined, std: w.std ?? undefined,
    size: trainedImageSize(w) ?? undefined, file,
  };
}

/** The model, weights loaded, with its example input and metadata. */
export function loadExportSource(spec: string, o: ExportSourceOptions = {}): ExportSource {
  const d = describe(spec, o);
  const entry = modelEntry(d.name);
  const ex = exampleInput(entry);
  const sequence = entry.config.exampleInput !== undefined;
  const channels = sequence ? 0 : ((d.options.inChannels as number | undefined) ?? entry.config.inputSize[0]);
  const options = { ...(sequence ? ex.options : {}), ...d.options, ...(o.numClasses ? { numClasses: o.numClasses } : {}), ...(sequence ? {} : { inChannels: channels }) };
  const model = createModel(d.name, options) as unknown as Module<never[], unknown>;
  try {
    if (d.pretrained) d.file = loadPretrained(model, d.name, { ignoreMismatchedHead: false }).file;
    else if (d.file) loadModelWeights(model, d.file, { prefer: o.ema ? 'ema' : 'model' });
    if (d.classes && d.classes.length !== (options.numClasses ?? d.classes.length)) {
      throw new Error(`${d.file}: ${d.classes.length} class names for a model with ${String(options.numClasses)} outputs`);
    }
    const metadata = describeMetadata(entry, d, options, channels, o.imageSize);
    const shape = sequence ? ex.shape : [1, ...(metadata.inputSize as number[])];
    const example = ex.dtype === 'int64' ? randint(0, 2, shape) : randn(shape);
    return { model, example, metadata, weights: d.file };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function describeMetadata(entry: ModelEntry, d: Described, options: Record<string, unknown>, channels: number, imageSize?: [number, number]): ExportMetadata {
  const cfg = entry.config;
  const m: ExportMetadata = { modelName: d.name, modelOptions: options, classNames: d.classes };
  if (cfg.exampleInput) {
    m.inputSize = cfg.exampleInput.shape.slice(1);
    return m;
  }
  const trained = d.size !== undefined;
  const crop = d.pretrained?.cropSize;
  const [h, w] = imageSize ?? d.size ?? (crop ? [crop, crop] : [cfg.inputSize[1], cfg.inputSize[2]]);
  const pick = (v: number[] | undefined, fallback: number[]): number[] => {
    const src = v ?? fallback;
    return src.length === channels ? src : channels === 1 ? [src.reduce((a, b) => a + b, 0) / src.length] : src.slice(0, channels);
  };
  m.inputSize = [channels, h, w];
  m.mean = pick(d.mean, cfg.mean);
  m.std = pick(d.std, cfg.std);
  // ImageNet-style models resize the shorter side to crop / cropPct, then centre-crop; a model
  // trained on a fixed-size dataset takes its images as they are; published weights say their own
  const pre = d.pretrained;
  m.resize = trained ? Math.min(h, w) : pre && !imageSize ? pre.resizeSize : Math.floor(Math.min(h, w) / cfg.cropPct);
  m.crop = [h, w];
  m.interpolation = pre?.interpolation ?? cfg.interpolation;
  return m;
}
