// Augmentation and preprocessing on batches, as in the papers' recipes, with libtorch ops on the
// whole batch (no per-pixel JS): normalisation, crops (CIFAR's pad-and-crop, Inception's random
// resized crop), flips, shifts, random erasing and cutout, resizing; RandAugment and mixup/cutmix
// live in randaugment.ts and mix.ts. `compose` chains them; `transformFromSpec` builds them
// from JSON recipes.

import { isFloating, randint, randn, tensor, type Tensor } from '../engine/index.js';
import { pythonRound } from '../engine/math.js';
import type { Batch } from './dataset.js';
import {
  centerCropBatch, cropBatch, dims4, eraseBatch, flipBatch, resizeBatch, resizedCropBatch,
  type Box, type PadMode,
} from './ops.js';
import { torchUniform } from './rng.js';
import {
  disposeReplaced, makeTransform, readOptions, type OptionReader,
  type BatchTransform, type Transform, type TransformSpec,
} from './transform.js';
import { randAugment } from './randaugment.js';
import { cutmix, mixup, mixupCutmix } from './mix.js';

export type { BatchTransform, Transform, TransformSpec, TransformOptions } from './transform.js';

type Size = number | [number, number];

const withX = (batch: Batch, x: Tensor): Batch => ({ x, y: batch.y });

/** Uniform integers in [lo, hi] (inclusive), one per sample, from libtorch's generator. */
function uniformInts(n: number, lo: number, hi: number): number[] {
  const u = torchUniform(n);
  return Array.from(u, (v) => lo + Math.min(hi - lo, Math.floor(v * (hi - lo + 1))));
}

// ---------------------------------------------------------------------------------------------
// Pixel values

export interface ToFloatOptions {
  /** Multiplier applied to integer images; default 1/255 (uint8 to [0, 1]). */
  scale?: number;
}

/** uint8 images to float32 in [0, 1] (ToTensor's scaling); float images pass through. */
export function toFloat(options: ToFloatOptions = {}): Transform {
  const scale = readOptions('toFloat', options, (o) => o.number('scale', 1 / 255));
  return makeTransform('toFloat', { scale }, (batch) =>
    isFloating(batch.x.dtype) ? batch : withX(batch, batch.x.float().mul(scale)));
}

/**
 * Gray images repeated to `channels` (3: RGB), for a model whose stem takes colour: ImageNet
 * weights on Fashion-MNIST without adapting the stem. Images that already have `channels` pass.
 */
export function repeatChannels(options: { channels: number }): Transform {
  const channels = readOptions('repeatChannels', options, (o) => o.number('channels', undefined, { min: 1, max: 4096, integer: true }));
  return makeTransform('repeatChannels', { channels }, (batch) => {
    const c = batch.x.shape[1];
    if (c === channels) return batch;
    if (batch.x.ndim !== 4 || c !== 1) throw new RangeError(`repeatChannels: expected gray images [N, 1, H, W] (or ${channels} channels), got [${batch.x.shape.join(', ')}]`);
    return withX(batch, batch.x.repeat([1, channels, 1, 1]));
  });
}

/** Per-dataset channel statistics (of images scaled to [0, 1]). */
export const NORMALIZATION_STATS: Readonly<Record<string, { mean: number[]; std: number[] }>> = Object.freeze({
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  'fashion-mnist': { mean: [0.286], std: [0.353] },
  mnist: { mean: [0.1307], std: [0.3081] },
});

export interface NormalizeOptions {
  mean?: number[];
  std?: number[];
  /** A name from NORMALIZATION_STATS instead of mean and std. */
  stats?: string;
}

/**
 * (x - mean) / std per channel, as torchvision's Normalize. uint8 input is first scaled to
 * [0, 1] (so `normalize` alone turns dataset bytes into network input); the output is float32.
 */
export function normalize(options: NormalizeOptions): Transform {
  const { mean, std } = readOptions('normalize', options, (o) => {
    if (o.has('stats')) {
      const name = o.oneOf('stats', Object.keys(NORMALIZATION_STATS), 'imagenet');
      return NORMALIZATION_STATS[name]!;
    }
    return { mean: o.numbers('mean'), std: o.numbers('std') };
  });
  if (mean.length !== std.length) throw new TypeError(`normalize: mean has ${mean.length} values but std has ${std.length}`);
  if (std.some((s) => s <= 0)) throw new RangeError(`normalize: every std must be positive, got [${std.join(', ')}]`);
  return makeTransform('normalize', { mean, std }, (batch) => {
    const [, c] = dims4(batch.x, 'normalize');
    if (mean.length !== 1 && mean.length !== c) {
      throw new TypeError(`normalize: mean and std have ${mean.length} values but the images have ${c} channels`);
    }
    const x = isFloating(batch.x.dtype) ? batch.x : batch.x.float().div(255);
    const m = tensor(mean, { dtype: x.dtype, device: x.device }).view([1, -1, 1, 1]);
    const s = tensor(std, { dtype: x.dtype, device: x.device }).view([1, -1, 1, 1]);
    return withX(batch, x.sub(m).div(s));
  });
}

// ---------------------------------------------------------------------------------------------
// Geometry

export interface ResizeTransformOptions {
  size: Size;
  mode?: 'bilinear' | 'bicubic' | 'nearest';
  antialias?: boolean;
}

/** Resizes every image to size (EfficientNet's resolution scaling); one interpolate for the batch. */
export function resize(options: ResizeTransformOptions): Transform {
  const o = readOptions('resize', options, (r) => ({
    size: r.size('size'), mode: r.oneOf('mode', ['bilinear', 'bicubic', 'nearest'] as const, 'bilinear'), antialias: r.boolean('antialias', true),
  }));
  return makeTransform('resize', o, (batch) => withX(batch, resizeBatch(batch.x, o.size, o)));
}

export function centerCrop(options: { size: Size }): Transform {
  const size = readOptions('centerCrop', options, (r) => r.size('size'));
  return makeTransform('centerCrop', { size }, (batch) => withX(batch, centerCropBatch(batch.x, size)));
}

export interface RandomCropOptions {
  size: Size;
  /** Pixels added on every side before cropping (CIFAR: 4). */
  padding?: number;
  paddingMode?: PadMode;
  /** The value of padded pixels in 'constant' mode. */
  fill?: number;
}

/**
 * Pads by `padding` then crops `size` at a random position, per sample (the CIFAR recipe: pad 4,
 * crop 32). One gather for the batch; padding is virtual (no padded copy is made).
 * Evaluation: a centre crop of size (nothing when size is the image size).
 */
export function randomCrop(options: RandomCropOptions): Transform {
  const o = readOptions('randomCrop', options, (r) => ({
    size: r.size('size'),
    padding: r.number('padding', 0, { min: 0, integer: true }),
    paddingMode: r.oneOf('paddingMode', ['constant', 'reflect', 'replicate'] as const, 'constant'),
    fill: r.number('fill', 0),
  }));
  return makeTransform('randomCrop', o, (batch, training) => {
    const [n, , H, W] = dims4(batch.x, 'randomCrop');
    const [h, w] = o.size;
    if (!training) return withX(batch, centerCropBatch(batch.x, o.size));
    const p = o.padding;
    if (h > H + 2 * p || w > W + 2 * p) {
      throw new RangeError(`randomCrop: crop ${h}x${w} is larger than the padded image ${H + 2 * p}x${W + 2 * p}`);
    }
    const top = uniformInts(n, -p, H + p - h);
    const left = uniformInts(n, -p, W + p - w);
    return withX(batch, cropBatch(batch.x, top, left, o.size, { mode: o.paddingMode, value: o.fill }));
  });
}

export interface RandomShiftOptions {
  /** Horizontal shift range: a fraction of the width if < 1, else pixels (Keras' width_shift_range). */
  width?: number;
  /** Vertical shift range, likewise. */
  height?: number;
  fill?: number;
  paddingMode?: PadMode;
}

/** Shifts each image by a random whole number of pixels in [-range, range], filling what is uncovered. */
export function randomShift(options: RandomShiftOptions = {}): Transform {
  const o = readOptions('randomShift', options, (r) => ({
    width: r.number('width', 0.1, { min: 0 }),
    height: r.number('height', 0.1, { min: 0 }),
    fill: r.number('fill', 0),
    paddingMode: r.oneOf('paddingMode', ['constant', 'reflect', 'replicate'] as const, 'constant'),
  }));
  const pixels = (range: number, size: number): number => (range < 1 ? Math.floor(range * size) : Math.floor(range));
  return makeTransform('randomShift', o, (batch, training) => {
    if (!training) return batch;
    const [n, , H, W] = dims4(batch.x, 'randomShift');
    const dy = pixels(o.height, H);
    const dx = pixels(o.width, W);
    const top = uniformInts(n, -dy, dy);
    const left = uniformInts(n, -dx, dx);
    return withX(batch, cropBatch(batch.x, top, left, [H, W], { mode: o.paddingMode, value: o.fill }));
  });
}

export interface RandomResizedCropOptions {
  size: Size;
  /** Range of the crop's area as a fraction of the image; default [0.08, 1]. */
  scale?: [number, number];
  /** Range of the crop's aspect ratio (width / height); default [3/4, 4/3]. */
  ratio?: [number, number];
  mode?: 'bilinear' | 'bicubic';
  antialias?: boolean;
  /** Evaluation: the fraction of the largest centred crop kept before resizing (timm's crop_pct); default 1. */
  cropPct?: number;
}

// torchvision's RandomResizedCrop.get_params for one image, from 22 uniforms.
function resizedCropBox(u: Float64Array, at: number, H: number, W: number, scale: [number, number], logRatio: [number, number], ratio: [number, number]): Box {
  const area = H * W;
  for (let k = 0; k < 10; k++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * u[at + 2 * k]!);
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * u[at + 2 * k + 1]!);
    const w = pythonRound(Math.sqrt(target * aspect));
    const h = pythonRound(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const top = Math.min(H - h, Math.floor(u[at + 20]! * (H - h + 1)));
      const left = Math.min(W - w, Math.floor(u[at + 21]! * (W - w + 1)));
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = W / H; // fallback: the centre crop torchvision takes
  let w = W;
  let h = H;
  if (inRatio < ratio[0]) h = pythonRound(w / ratio[0]);
  else if (inRatio > ratio[1]) w = pythonRound(h * ratio[1]);
  return { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
}

function evalCropBox(H: number, W: number, [h, w]: [number, number], cropPct: number): Box {
  const fit = Math.min(H / h, W / w) * cropPct; // the largest centred window with the output's aspect
  const ch = Math.max(1, Math.min(H, Math.round(h * fit)));
  const cw = Math.max(1, Math.min(W, Math.round(w * fit)));
  return { top: Math.floor((H - ch) / 2), left: Math.floor((W - cw) / 2), height: ch, width: cw };
}

/**
 * Inception-style random resized crop (Szegedy et al. 2015, torchvision's RandomResizedCrop):
 * a box of random area and aspect per sample, resized to size with antialiased bilinear.
 * Evaluation: the centred crop of cropPct of the largest window with size's aspect, resized.
 */
export function randomResizedCrop(options: RandomResizedCropOptions): Transform {
  const o = readOptions('randomResizedCrop', options, (r) => ({
    size: r.size('size'),
    scale: r.range('scale', [0.08, 1], 0, 1),
    ratio: r.range('ratio', [3 / 4, 4 / 3], 1e-6),
    mode: r.oneOf('mode', ['bilinear', 'bicubic'] as const, 'bilinear'),
    antialias: r.boolean('antialias', true),
    cropPct: r.number('cropPct', 1, { min: 1e-3, max: 1 }),
  }));
  const logRatio: [number, number] = [Math.log(o.ratio[0]), Math.log(o.ratio[1])];
  return makeTransform('randomResizedCrop', o, (batch, training) => {
    const [n, , H, W] = dims4(batch.x, 'randomResizedCrop');
    let boxes: Box[];
    if (training) {
      const u = torchUniform(22 * n);
      boxes = Array.from({ length: n }, (_, k) => resizedCropBox(u, 22 * k, H, W, o.scale, logRatio, o.ratio));
    } else {
      const box = evalCropBox(H, W, o.size, o.cropPct);
      if (box.height === H && box.width === W) return withX(batch, resizeBatch(batch.x, o.size, o));
      boxes = new Array<Box>(n).fill(box);
    }
    return withX(batch, resizedCropBatch(batch.x, boxes, o.size, o));
  });
}

function randomFlip(name: string, direction: 'horizontal' | 'vertical', options: { p?: number }): Transform {
  const p = readOptions(name, options, (r) => r.probability('p', 0.5));
  return makeTransform(name, { p }, (batch, training) => {
    if (!training || p === 0) return batch;
    const [n] = dims4(batch.x, name);
    const mask = Array.from(torchUniform(n), (u) => u < p);
    return withX(batch, flipBatch(batch.x, mask, direction));
  });
}

/** Mirrors each sample left-right with probability p (default 0.5). */
export const randomHorizontalFlip = (options: { p?: number } = {}): Transform => randomFlip('randomHorizontalFlip', 'horizontal', options);
/** Mirrors each sample top-bottom with probability p (default 0.5). */
export const randomVerticalFlip = (options: { p?: number } = {}): Transform => randomFlip('randomVerticalFlip', 'vertical', options);

// ---------------------------------------------------------------------------------------------
// Occlusion

export interface RandomErasingOptions {
  p?: number;
  /** Range of the erased area as a fraction of the image; default [0.02, 0.33]. */
  scale?: [number, number];
  /** Range of the rectangle's aspect ratio; default [0.3, 3.3]. */
  ratio?: [number, number];
  /** The fill: a number, one number per channel, or 'random' (standard normal noise; uniform bytes for uint8). */
  value?: number | number[] | 'random';
}

// torchvision's RandomErasing.get_params for one image, from 23 uniforms; height 0 means 'no erasing'.
function erasingBox(u: Float64Array, at: number, H: number, W: number, p: number, scale: [number, number], logRatio: [number, number]): Box {
  const none = { top: 0, left: 0, height: 0, width: 0 };
  if (u[at]! >= p) return none;
  const area = H * W;
  for (let k = 0; k < 10; k++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * u[at + 1 + 2 * k]!);
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * u[at + 2 + 2 * k]!);
    const h = pythonRound(Math.sqrt(target * aspect));
    const w = pythonRound(Math.sqrt(target / aspect));
    if (h < H && w < W && h > 0 && w > 0) {
      const top = Math.min(H - h, Math.floor(u[at + 21]! * (H - h + 1)));
      const left = Math.min(W - w, Math.floor(u[at + 22]! * (W - w + 1)));
      return { top, left, height: h, width: w };
    }
  }
  return none;
}

// Noise is drawn on the CPU (the seeded generator), then moved to the batch's device.
function erasingValue(x: Tensor, value: number | number[] | 'random'): number | Tensor {
  if (typeof value === 'number') return value;
  const [, c] = dims4(x, 'randomErasing');
  if (value === 'random') {
    const noise = isFloating(x.dtype) ? randn(x.shape, { dtype: x.dtype }) : randint(0, 256, x.shape, { dtype: 'int64' }).to(x.dtype);
    return x.device === 'cpu' ? noise : noise.to(x.device);
  }
  if (value.length !== c) throw new TypeError(`randomErasing: value has ${value.length} numbers but the images have ${c} channels`);
  return tensor(value, { dtype: x.dtype, device: x.device }).view([1, c, 1, 1]);
}

function erasingValueOption(v: unknown, r: OptionReader): number | number[] | 'random' {
  if (v === 'random') return 'random';
  if (Array.isArray(v)) return r.numbers('value');
  return r.number('value', 0);
}

/**
 * Random erasing (Zhong et al. 2017, torchvision's RandomErasing): with probability p, a
 * rectangle of random area and aspect per sample is filled with value. Usually placed after
 * normalize, as in torchvision's recipes.
 */
export function randomErasing(options: RandomErasingOptions = {}): Transform {
  const o = readOptions('randomErasing', options, (r) => ({
    p: r.probability('p', 0.5),
    scale: r.range('scale', [0.02, 0.33], 0, 1),
    ratio: r.range('ratio', [0.3, 3.3], 1e-6),
    value: erasingValueOption(r.value('value'), r),
  }));
  const logRatio: [number, number] = [Math.log(o.ratio[0]), Math.log(o.ratio[1])];
  return makeTransform('randomErasing', o, (batch, training) => {
    if (!training || o.p === 0) return batch;
    const [n, , H, W] = dims4(batch.x, 'randomErasing');
    const u = torchUniform(23 * n);
    const boxes = Array.from({ length: n }, (_, k) => erasingBox(u, 23 * k, H, W, o.p, o.scale, logRatio));
    if (boxes.every((b) => b.height === 0)) return batch;
    return withX(batch, eraseBatch(batch.x, boxes, erasingValue(batch.x, o.value)));
  });
}

export interface CutoutOptions {
  /** Side of the square hole in pixels (DeVries & Taylor: 16 on CIFAR-10). */
  size: number;
  p?: number;
  fill?: number;
}

/**
 * Cutout (DeVries & Taylor 2017): a size x size square centred at a uniformly random pixel,
 * clipped at the borders, set to fill (0), per sample with probability p (default 1).
 */
export function cutout(options: CutoutOptions): Transform {
  const o = readOptions('cutout', options, (r) => ({
    size: r.number('size', undefined, { min: 1, integer: true }),
    p: r.probability('p', 1),
    fill: r.number('fill', 0),
  }));
  return makeTransform('cutout', o, (batch, training) => {
    if (!training || o.p === 0) return batch;
    const [n, , H, W] = dims4(batch.x, 'cutout');
    const u = torchUniform(3 * n);
    const half = Math.floor(o.size / 2);
    const boxes = Array.from({ length: n }, (_, k): Box => {
      if (u[3 * k]! >= o.p) return { top: 0, left: 0, height: 0, width: 0 };
      const cy = Math.min(H - 1, Math.floor(u[3 * k + 1]! * H));
      const cx = Math.min(W - 1, Math.floor(u[3 * k + 2]! * W));
      const y1 = Math.max(0, cy - half);
      const x1 = Math.max(0, cx - half);
      return { top: y1, left: x1, height: Math.min(H, cy + half) - y1, width: Math.min(W, cx + half) - x1 };
    });
    return withX(batch, eraseBatch(batch.x, boxes, o.fill));
  });
}

// ---------------------------------------------------------------------------------------------
// Composition and recipes

export interface TransformContext {
  /** Filled into mixup/cutmix specs that do not give numClasses. */
  numClasses?: number;
}

type Factory = (options: Record<string, unknown>, context: TransformContext) => Transform;

const withClasses = (options: Record<string, unknown>, context: TransformContext): Record<string, unknown> =>
  options.numClasses === undefined && context.numClasses !== undefined ? { ...options, numClasses: context.numClasses } : options;

const FACTORIES = new Map<string, Factory>([
  ['toFloat', (o) => toFloat(o)],
  ['normalize', (o) => normalize(o)],
  ['resize', (o) => resize(o as unknown as ResizeTransformOptions)],
  ['repeatChannels', (o) => repeatChannels(o as unknown as { channels: number })],
  ['centerCrop', (o) => centerCrop(o as unknown as { size: Size })],
  ['randomCrop', (o) => randomCrop(o as unknown as RandomCropOptions)],
  ['randomShift', (o) => randomShift(o)],
  ['randomResizedCrop', (o) => randomResizedCrop(o as unknown as RandomResizedCropOptions)],
  ['randomHorizontalFlip', (o) => randomHorizontalFlip(o)],
  ['randomVerticalFlip', (o) => randomVerticalFlip(o)],
  ['randomErasing', (o) => randomErasing(o)],
  ['cutout', (o) => cutout(o as unknown as CutoutOptions)],
  ['randAugment', (o) => randAugment(o)],
  ['mixup', (o, c) => mixup(withClasses(o, c) as never)],
  ['cutmix', (o, c) => cutmix(withClasses(o, c) as never)],
  ['mixupCutmix', (o, c) => mixupCutmix(withClasses(o, c) as never)],
  ['compose', (o, c) => asTransform(compose(composeItems(o), c), c)],
]);

// {"name": "compose", "transforms": [...]}: a nested pipeline, as a composed pipeline's spec.
function composeItems(o: Record<string, unknown>): TransformSpec[] {
  const unknown = Object.keys(o).filter((k) => k !== 'transforms');
  if (!Array.isArray(o.transforms) || unknown.length > 0) {
    throw new TypeError(`compose: expected {"name": "compose", "transforms": [specs]}, got options ${JSON.stringify(o)}`);
  }
  return o.transforms as TransformSpec[];
}

/** Names transformFromSpec knows. */
export const transformNames = (): string[] => [...FACTORIES.keys()];

/** Adds a transform to the names transformFromSpec knows (user extensions). */
export function registerTransform(name: string, factory: (options: Record<string, unknown>, context: TransformContext) => Transform): void {
  if (FACTORIES.has(name)) throw new Error(`registerTransform: a transform named '${name}' is already registered`);
  FACTORIES.set(name, factory);
}

/** Builds a transform from its spec, e.g. {"name": "randomCrop", "size": 28, "padding": 4}. */
export function transformFromSpec(spec: TransformSpec, context: TransformContext = {}): Transform {
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') {
    throw new TypeError(`transformFromSpec: expected an object with a string 'name', got ${JSON.stringify(spec)}`);
  }
  const factory = FACTORIES.get(spec.name);
  if (factory === undefined) {
    throw new TypeError(`transformFromSpec: unknown transform '${spec.name}'; known: ${transformNames().join(', ')}`);
  }
  const { name: _name, ...options } = spec;
  return factory(options, context);
}

/** A pipeline: callable as a BatchTransform, and itself a Transform (name 'compose'). */
export interface ComposedTransform extends BatchTransform {
  readonly transforms: readonly Transform[];
  apply(batch: Batch, training: boolean): Batch;
  /** The recipe: one spec per transform. */
  toJSON(): TransformSpec[];
}

const isComposed = (f: BatchTransform): f is ComposedTransform => Array.isArray((f as Partial<ComposedTransform>).transforms);

function asTransform(item: Transform | TransformSpec | BatchTransform, context: TransformContext): Transform {
  if (typeof item === 'function' && isComposed(item)) return makeTransform('compose', { transforms: item.toJSON() }, item);
  if (typeof item === 'function') return makeTransform(item.name || 'custom', {}, item);
  if (typeof (item as Transform).apply === 'function') return item as Transform;
  return transformFromSpec(item as TransformSpec, context);
}

/**
 * Chains transforms (objects, specs, or plain functions) into one BatchTransform. Intermediate
 * batches are freed as soon as the next transform has replaced them; the input batch is never
 * disposed (the caller owns it) and the output may share tensors with it.
 */
export function compose(items: readonly (Transform | TransformSpec | BatchTransform)[], context: TransformContext = {}): ComposedTransform {
  if (!Array.isArray(items)) throw new TypeError('compose: expected an array of transforms or specs');
  const transforms = items.map((t) => asTransform(t, context));
  const run = (batch: Batch, training: boolean): Batch => {
    let current = batch;
    for (const t of transforms) {
      const next = t.apply(current, training);
      if (current !== batch) disposeReplaced(current, next, batch);
      current = next;
    }
    return current;
  };
  return Object.assign(run, {
    transforms,
    apply: run,
    toJSON: (): TransformSpec[] => transforms.map((t) => t.toJSON()),
  });
}

/** A plain BatchTransform from a transform, a spec, a list of either, or a function. */
export function toBatchTransform(t: Transform | TransformSpec | BatchTransform | readonly (Transform | TransformSpec | BatchTransform)[], context: TransformContext = {}): BatchTransform {
  if (Array.isArray(t)) return compose(t, context);
  const single = asTransform(t as Transform | TransformSpec | BatchTransform, context);
  return (batch, training) => single.apply(batch, training);
}
