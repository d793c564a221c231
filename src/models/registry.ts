// The model registry: every family registers its names with a builder and its pretrained
// configuration (input size, normalisation, interpolation), as timm's pretrained_cfg does.
import type { DType, Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { pretrainedLoader } from './pretrained_hook.js';
import { applyPrunedLayers, checkPrunedLayers, type PrunedLayers } from './pruned.js';

/** Options every constructor takes; families add their own. */
export interface ModelOptions {
  numClasses?: number;
  /** input channels: 1 gives a grayscale stem */
  inChannels?: number;
  /** dropout before the classifier */
  dropRate?: number;
  /** stochastic depth rate, scaled linearly over the blocks */
  dropPathRate?: number;
  /** zero-init the last BN of each residual branch */
  zeroInitResidual?: boolean;
  /**
   * start from torchvision's published ImageNet weights (downloaded once into the cache); with
   * another numClasses the head starts afresh, with other inChannels the stem is adapted
   */
  pretrained?: boolean;
  /** a channel-pruned architecture: module path -> narrower sizes (models/pruned.ts) */
  prunedLayers?: PrunedLayers;
}

export interface ModelConfig {
  family: string;
  /** [channels, height, width] at the model's native resolution */
  inputSize: [number, number, number];
  /** the smallest spatial size the architecture accepts */
  minInputSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: 'bilinear' | 'bicubic';
  cropPct: number;
  /** the torchvision builder of the same name exists (parity-tested against it) */
  torchvision: boolean;
  paper?: string;
  /** what the model takes, when not an image batch [1, ...inputSize] (sequence models) */
  exampleInput?: ExampleInput;
}

/** An input a registered model accepts, and the options it must be built with to accept it. */
export interface ExampleInput {
  /** batch included: [1, C, H, W] for an image model, [1, T, F] for a feature-sequence model */
  shape: number[];
  dtype: DType;
  /** e.g. { inChannels: 1 } for a grayscale stem; {} when the defaults fit */
  options: ModelOptions & Record<string, unknown>;
}

/** A classifier: training mode may return auxiliary outputs alongside the logits. */
export type Classifier = Module<[Tensor], Tensor | Tensor[]>;

export interface ModelEntry<O extends ModelOptions = ModelOptions> {
  name: string;
  config: ModelConfig;
  build: (opts: O) => Classifier;
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

const registry = new Map<string, ModelEntry>();

export function registerModel<O extends ModelOptions>(entry: ModelEntry<O>): void {
  if (registry.has(entry.name)) throw new Error(`model '${entry.name}' is registered twice`);
  registry.set(entry.name, entry as ModelEntry);
}

export function modelEntry(name: string): ModelEntry {
  const e = registry.get(name);
  if (!e) {
    throw new Error(`unknown model '${name}': known models are ${[...registry.keys()].sort().join(', ')}`);
  }
  return e;
}

/** Builds a registered model by name: createModel('resnet50', { numClasses: 10 }). */
export function createModel(name: string, opts: ModelOptions & Record<string, unknown> = {}): Classifier {
  const e = modelEntry(name);
  for (const key of ['numClasses', 'inChannels'] as const) {
    const v = opts[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new RangeError(`${name}: ${key} must be a positive integer, got ${String(v)}`);
  }
  if (opts.pretrained !== undefined && typeof opts.pretrained !== 'boolean') throw new TypeError(`${name}: pretrained must be true or false, got ${String(opts.pretrained)}`);
  const { pretrained, prunedLayers, ...rest } = opts;
  if (prunedLayers !== undefined) {
    if (pretrained) throw new Error(`${name}: pretrained weights do not fit a pruned architecture (prunedLayers)`);
    const layers = checkPrunedLayers(prunedLayers, `${name}: model option prunedLayers`);
    const model = e.build(rest);
    try {
      applyPrunedLayers(model as Module<unknown[], unknown>, layers, `${name}: model option prunedLayers`);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  }
  if (!pretrained) return e.build(rest);
  const loader = pretrainedLoader();
  if (!loader) throw new Error(`${name}: pretrained weights need convkit's models module (import 'convkit/models', which loads models/pretrained)`);
  loader.check(name);
  const model = e.build(rest);
  try {
    loader.load(model as Module<never[], unknown>, name);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** The entry's declared example input, else one image at its inputSize with a stem to match. */
export function exampleInput(e: ModelEntry): ExampleInput {
  const [c, h, w] = e.config.inputSize;
  return e.config.exampleInput ?? { shape: [1, c, h, w], dtype: 'float32', options: { inChannels: c } };
}

export function listModels(family?: string): ModelEntry[] {
  return [...registry.values()].filter((e) => !family || e.config.family === family);
}
