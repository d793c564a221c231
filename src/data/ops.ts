// Batch image operations on tensors [N, C, H, W], each taking its per-sample parameters
// explicitly (offsets, masks, boxes, factors) so that it is deterministic and testable; the
// random transforms in transforms.ts draw the parameters and call these.
//
// Pixel semantics follow torchvision's tensor functional ops (functional_tensor.py, 0.14):
// uint8 images are computed in float32 and cast back the way torchvision casts them, so a
// uint8 batch stays uint8 and matches torchvision image for image.

import { arange, cat, F, isFloating, linspace, ones, stack, tensor, tidy, where, zeros, type DType, type Tensor } from '../engine/index.js';
import { pythonRound } from '../engine/math.js';
import { indexTensor } from './dataset.js';

export type Size2 = number | readonly [number, number];

export function pair(size: Size2, what = 'size'): [number, number] {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h! < 1 || w! < 1) {
    throw new RangeError(`${what} must be a positive integer or [height, width] of positive integers, got ${JSON.stringify(size)}`);
  }
  return [h!, w!];
}

/** [N, C, H, W] of a batch, or a TypeError naming the operation. */
export function dims4(x: Tensor, op: string): [number, number, number, number] {
  if (x.ndim !== 4) throw new TypeError(`${op}: expected images [N, C, H, W], got a ${x.ndim}-d tensor [${x.shape.join(', ')}]`);
  return x.shape as [number, number, number, number];
}

/** The largest pixel value: 255 for integer images, 1 for float images (torchvision's bound). */
export const pixelBound = (x: Tensor): number => (isFloating(x.dtype) ? 1 : 255);

// torchvision's _cast_squeeze_out: round integer results, then cast.
function castBack(y: Tensor, dtype: DType): Tensor {
  if (isFloating(dtype)) return y.dtype === dtype ? y : y.to(dtype);
  return y.round().clamp(0, 255).to(dtype);
}

// Small parameter tensors are made on the batch's device, so the ops work on GPU batches too.
const perSample = (values: ArrayLike<number>, dtype: DType, device: string): Tensor =>
  tensor(Float64Array.from(Array.from(values)), { dtype, device }).view([-1, 1, 1, 1]);

function checkLength(values: { length: number }, n: number, what: string): void {
  if (values.length !== n) throw new RangeError(`${what}: expected ${n} per-sample values, got ${values.length}`);
}

// ---------------------------------------------------------------------------------------------
// Crops, flips, boxes

export type PadMode = 'constant' | 'reflect' | 'replicate';

export interface FillOptions {
  /** How pixels outside the image are made (as F.pad): default 'constant'. */
  mode?: PadMode;
  /** The constant for 'constant' mode; default 0. */
  value?: number;
}

// Maps a source coordinate that may lie outside [0, size) into it; -1 marks 'use the fill value'.
function mapCoord(i: number, size: number, mode: PadMode): number {
  if (i >= 0 && i < size) return i;
  if (mode === 'constant') return -1;
  if (mode === 'replicate' || size === 1) return i < 0 ? 0 : size - 1;
  const period = 2 * (size - 1); // reflect without repeating the edge, as F.pad's 'reflect'
  const m = ((i % period) + period) % period;
  return m < size ? m : period - m;
}

function coordTable(starts: ArrayLike<number>, length: number, size: number, mode: PadMode): { idx: Int32Array; outside: boolean } {
  const idx = new Int32Array(starts.length * length);
  let outside = false;
  for (let n = 0; n < starts.length; n++) {
    for (let k = 0; k < length; k++) {
      const v = mapCoord(starts[n]! + k, size, mode);
      if (v < 0) outside = true;
      idx[n * length + k] = v;
    }
  }
  return { idx, outside };
}

/**
 * Crops window [top[n], top[n] + h) x [left[n], left[n] + w) out of sample n, with one gather
 * for the whole batch. Windows may reach outside the image (the CIFAR recipe's padded crop is a
 * window starting at -4..+4): those pixels come from `fill`, as if the image had been padded.
 */
export function cropBatch(x: Tensor, top: ArrayLike<number>, left: ArrayLike<number>, size: Size2, fill: FillOptions = {}): Tensor {
  const [n, c, H, W] = dims4(x, 'cropBatch');
  const [h, w] = pair(size, 'cropBatch: size');
  checkLength(top, n, 'cropBatch: top');
  checkLength(left, n, 'cropBatch: left');
  const mode = fill.mode ?? 'constant';
  const rows = coordTable(top, h, H, mode);
  const cols = coordTable(left, w, W, mode);
  return tidy(() => {
    const r = tensor(rows.idx, { shape: [n, h], device: x.device }).long();
    const q = tensor(cols.idx, { shape: [n, w], device: x.device }).long();
    const flat = r.clamp(0).mul(W).unsqueeze(2).add(q.clamp(0).unsqueeze(1)); // [n, h, w]
    const index = flat.reshape([n, 1, h * w]).expand([n, c, h * w]);
    let out = x.reshape([n, c, H * W]).gather(2, index).reshape([n, c, h, w]);
    if (rows.outside || cols.outside) {
      const inside = r.ge(0).unsqueeze(2).logicalAnd(q.ge(0).unsqueeze(1)).unsqueeze(1); // [n, 1, h, w]
      out = out.maskedFill(inside.logicalNot(), fill.value ?? 0);
    }
    return out;
  });
}


// torchvision's CenterCrop offset: round((size - out) / 2), or -(out - size) // 2 when it pads.
const centerOffset = (size: number, out: number): number => (size >= out ? pythonRound((size - out) / 2) : -Math.floor((out - size) / 2));

/** The centred window of `size`, as torchvision's CenterCrop (zero padding where the image is smaller). */
export function centerCropBatch(x: Tensor, size: Size2): Tensor {
  const [n, , H, W] = dims4(x, 'centerCropBatch');
  const [h, w] = pair(size, 'centerCropBatch: size');
  if (h === H && w === W) return x;
  return cropBatch(x, new Array<number>(n).fill(centerOffset(H, h)), new Array<number>(n).fill(centerOffset(W, w)), [h, w]);
}

/**
 * torchvision's Resize(side) + CenterCrop(crop) on a float batch: the shorter side to `side`
 * (default: the crop's shorter side), keeping the aspect ratio, then the centred window. A batch
 * already at the crop size goes as it is (images decoded for this model).
 */
export function resizeAndCenterCrop(x: Tensor, crop: [number, number], side = Math.min(crop[0], crop[1])): Tensor {
  const [, , h, w] = dims4(x, 'resizeAndCenterCrop');
  if (h === crop[0] && w === crop[1]) return x;
  const scale = side / Math.min(h, w);
  return tidy(() => centerCropBatch(resizeBatch(x, [Math.max(crop[0], Math.round(h * scale)), Math.max(crop[1], Math.round(w * scale))]), crop));
}

/** Mirrors the samples where mask[n] is true, left-right ('horizontal') or top-bottom ('vertical'). */
export function flipBatch(x: Tensor, mask: Tensor | readonly boolean[], direction: 'horizontal' | 'vertical' = 'horizontal'): Tensor {
  const [n] = dims4(x, 'flipBatch');
  return tidy(() => {
    const m = Array.isArray(mask) ? tensor(mask.map((b) => (b ? 1 : 0)), { dtype: 'bool', device: x.device }) : (mask as Tensor).to({ dtype: 'bool', device: x.device });
    checkLength({ length: m.numel() }, n, 'flipBatch: mask');
    return where(m.view([n, 1, 1, 1]), x.flip([direction === 'horizontal' ? 3 : 2]), x);
  });
}

/** An axis-aligned rectangle; height or width 0 means 'no rectangle' for that sample. */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** bool [N, 1, H, W]: true inside sample n's box. Built from two small comparisons, no loops over pixels. */
export function boxMask(boxes: readonly Box[], height: number, width: number, device = 'cpu'): Tensor {
  return tidy(() => {
    const col = (k: keyof Box): Tensor => tensor(boxes.map((b) => b[k]), { dtype: 'int64', device }).unsqueeze(1);
    const ys = arange(0, height, 1, { device }).unsqueeze(0);
    const xs = arange(0, width, 1, { device }).unsqueeze(0);
    const top = col('top');
    const left = col('left');
    const inRows = ys.ge(top).logicalAnd(ys.lt(top.add(col('height')))); // [N, H]
    const inCols = xs.ge(left).logicalAnd(xs.lt(left.add(col('width')))); // [N, W]
    return inRows.unsqueeze(2).logicalAnd(inCols.unsqueeze(1)).unsqueeze(1);
  });
}

/** Sets the pixels inside each sample's box to `value` (a number, or a tensor broadcastable to x). */
export function eraseBatch(x: Tensor, boxes: readonly Box[], value: number | Tensor = 0): Tensor {
  const [n, , H, W] = dims4(x, 'eraseBatch');
  checkLength(boxes, n, 'eraseBatch: boxes');
  return tidy(() => {
    const mask = boxMask(boxes, H, W, x.device);
    return typeof value === 'number' ? x.maskedFill(mask, value) : where(mask, value.to(x.dtype), x);
  });
}

// ---------------------------------------------------------------------------------------------
// Resizing

export interface ResizeOptions {
  mode?: 'bilinear' | 'bicubic' | 'nearest';
  /** Low-pass before downscaling, as PIL and torchvision's antialias=True; default true. */
  antialias?: boolean;
}

function interpolateAny(x: Tensor, size: [number, number], o: ResizeOptions): Tensor {
  const mode = o.mode ?? 'bilinear';
  const antialias = mode !== 'nearest' && (o.antialias ?? true);
  if (mode === 'nearest' || isFloating(x.dtype)) return F.interpolate(x, size, { mode, antialias });
  return tidy(() => castBack(F.interpolate(x.float(), size, { mode, antialias }), x.dtype));
}

/** Resizes the whole batch to size (one interpolate call); returns x itself when it already has that size. */
export function resizeBatch(x: Tensor, size: Size2, o: ResizeOptions = {}): Tensor {
  const [, , H, W] = dims4(x, 'resizeBatch');
  const hw = pair(size, 'resizeBatch: size');
  if (hw[0] === H && hw[1] === W) return x;
  return interpolateAny(x, hw, o);
}

/** Crops each sample's box and resizes it to size: RandomResizedCrop's second half. */
export function resizedCropBatch(x: Tensor, boxes: readonly Box[], size: Size2, o: ResizeOptions = {}): Tensor {
  const [n, , H, W] = dims4(x, 'resizedCropBatch');
  checkLength(boxes, n, 'resizedCropBatch: boxes');
  const hw = pair(size, 'resizedCropBatch: size');
  boxes.forEach((b, k) => {
    if (b.top < 0 || b.left < 0 || b.height < 1 || b.width < 1 || b.top + b.height > H || b.left + b.width > W) {
      throw new RangeError(`resizedCropBatch: box ${k} ${JSON.stringify(b)} is not inside the ${H}x${W} image`);
    }
  });
  return tidy(() => {
    // Boxes differ in size, so each sample is its own interpolate call on a view (no copies).
    const parts = boxes.map((b, k) => interpolateAny(x.narrow(0, k, 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width), hw, o));
    return cat(parts, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// Affine warps (rotate, shear, translate) through a sampling grid

export interface AffineParams {
  /** Degrees, counter-clockwise as torchvision's F.affine. */
  angle?: number;
  translate?: readonly [number, number];
  scale?: number;
  /** Degrees [x, y]. */
  shear?: readonly [number, number];
  /** Centre in pixel coordinates relative to the image centre (torchvision's center_f); default [0, 0]. */
  center?: readonly [number, number];
}

const radians = (deg: number): number => deg * (Math.PI / 180);
/** Python's math.degrees. */
export const degrees = (rad: number): number => rad * (180 / Math.PI);

/** The inverse affine matrix (6 numbers, row-major 2x3) of torchvision's _get_inverse_affine_matrix. */
export function inverseAffineMatrix(p: AffineParams): number[] {
  const rot = radians(p.angle ?? 0);
  const [shx, shy] = p.shear ?? [0, 0];
  const sx = radians(shx);
  const sy = radians(shy);
  const [cx, cy] = p.center ?? [0, 0];
  const [tx, ty] = p.translate ?? [0, 0];
  const scale = p.scale ?? 1;
  const a = Math.cos(rot - sy) / Math.cos(sy);
  const b = (-Math.cos(rot - sy) * Math.tan(sx)) / Math.cos(sy) - Math.sin(rot);
  const c = Math.sin(rot - sy) / Math.cos(sy);
  const d = (-Math.sin(rot - sy) * Math.tan(sx)) / Math.cos(sy) + Math.cos(rot);
  const m = [d, -b, 0, -c, a, 0].map((v) => v / scale);
  m[2] += m[0]! * (-cx - tx) + m[1]! * (-cy - ty);
  m[5] += m[3]! * (-cx - tx) + m[4]! * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

// torchvision's _gen_affine_grid for output size = input size, one theta per sample.
function affineGridTv(theta: Tensor, n: number, h: number, w: number): Tensor {
  return tidy(() => {
    const o = { dtype: theta.dtype, device: theta.device };
    const xs = linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, w, o).view([1, w]).expand([h, w]);
    const ys = linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, h, o).view([h, 1]).expand([h, w]);
    const base = stack([xs, ys, ones([h, w], o)], 2).view([1, h * w, 3]).expand([n, h * w, 3]);
    const rescaled = theta.transpose(1, 2).div(tensor([0.5 * w, 0.5 * h], o));
    return base.bmm(rescaled).view([n, h, w, 2]);
  });
}

export interface WarpOptions {
  /** 'nearest' (torchvision's RandAugment default) or 'bilinear'. */
  interpolation?: 'nearest' | 'bilinear';
  /** Value of pixels mapped from outside the image; default 0. */
  fill?: number;
}

/**
 * Warps each sample by its inverse affine matrix (matrices: N*6 numbers, torchvision's
 * convention: pixel units, origin at the image centre), as torchvision's F.affine / F.rotate.
 */
export function affineBatch(x: Tensor, matrices: ArrayLike<number>, o: WarpOptions = {}): Tensor {
  const [n, c, H, W] = dims4(x, 'affineBatch');
  checkLength(matrices, n * 6, 'affineBatch: matrices (6 per sample)');
  const mode = o.interpolation ?? 'nearest';
  const fill = o.fill ?? 0;
  return tidy(() => {
    const img = isFloating(x.dtype) ? x : x.float();
    const theta = tensor(Float64Array.from(Array.from(matrices)), { dtype: img.dtype, device: x.device }).view([n, 2, 3]);
    const grid = affineGridTv(theta, n, H, W);
    if (fill === 0) return castBack(F.gridSample(img, grid, { mode, paddingMode: 'zeros', alignCorners: false }), x.dtype);
    // A ones channel rides along to tell sampled pixels from outside ones (torchvision's trick).
    const sampled = F.gridSample(cat([img, ones([n, 1, H, W], { dtype: img.dtype, device: x.device })], 1), grid, { mode, paddingMode: 'zeros', alignCorners: false });
    const body = sampled.narrow(1, 0, c);
    const weight = sampled.narrow(1, c, 1);
    const out = mode === 'nearest' ? body.maskedFill(weight.lt(0.5), fill) : body.mul(weight).add(weight.rsub(1).mul(fill));
    return castBack(out, x.dtype);
  });
}

// ---------------------------------------------------------------------------------------------
// Colour (torchvision's adjust_* on tensors, with one factor per sample)

/** (ratio * a + (1 - ratio) * b).clamp(0, bound), cast to a's dtype (torchvision's _blend). */
export function blendBatch(a: Tensor, b: Tensor | null, ratios: ArrayLike<number>): Tensor {
  const [n] = dims4(a, 'blendBatch');
  checkLength(ratios, n, 'blendBatch: ratios');
  return tidy(() => {
    const dtype: DType = isFloating(a.dtype) ? a.dtype : 'float32';
    let out = perSample(ratios, dtype, a.device).mul(a);
    // 1 - ratio in float64 first, then to the compute dtype, as Python computes (1.0 - ratio).
    if (b !== null) out = out.add(perSample(Array.from(ratios, (r) => 1 - r), dtype, a.device).mul(b));
    return out.clamp(0, pixelBound(a)).to(a.dtype);
  });
}

/** ITU-R 601 luma [N, 1, H, W] in x's dtype (torchvision's rgb_to_grayscale); 1-channel input is copied. */
export function grayscaleBatch(x: Tensor): Tensor {
  const [, c] = dims4(x, 'grayscaleBatch');
  if (c === 1) return x.clone();
  if (c !== 3) throw new TypeError(`grayscaleBatch: expected 1 or 3 channels, got ${c}`);
  return tidy(() => {
    const [r, g, b] = [0, 1, 2].map((k) => x.select(1, k));
    return r!.mul(0.2989).add(g!.mul(0.587)).add(b!.mul(0.114)).to(x.dtype).unsqueeze(1);
  });
}

export const brightnessBatch = (x: Tensor, factors: ArrayLike<number>): Tensor => blendBatch(x, null, factors);

/** Colour saturation (PIL's ImageEnhance.Color); grayscale images are returned unchanged. */
export function saturationBatch(x: Tensor, factors: ArrayLike<number>): Tensor {
  const [, c] = dims4(x, 'saturationBatch');
  if (c === 1) return x;
  return tidy(() => blendBatch(x, grayscaleBatch(x), factors));
}

export function contrastBatch(x: Tensor, factors: ArrayLike<number>): Tensor {
  dims4(x, 'contrastBatch');
  return tidy(() => {
    const dtype: DType = isFloating(x.dtype) ? x.dtype : 'float32';
    const mean = grayscaleBatch(x).to(dtype).mean([1, 2, 3], true);
    return blendBatch(x, mean, factors);
  });
}

// torchvision's _blurred_degenerate_image: a 3x3 smoothing (centre weight 5) inside a 1-pixel border.
function blurredDegenerate(x: Tensor): Tensor {
  const [, c, H, W] = dims4(x, 'sharpnessBatch');
  return tidy(() => {
    const dtype: DType = isFloating(x.dtype) ? x.dtype : 'float32';
    const kernel = tensor([1, 1, 1, 1, 5, 1, 1, 1, 1], { dtype, device: x.device }).div(13).view([1, 1, 3, 3]).expand([c, 1, 3, 3]);
    const inner = castBack(F.conv2d(x.to(dtype), kernel, null, { groups: c }), x.dtype);
    const out = x.clone();
    out.narrow(2, 1, H - 2).narrow(3, 1, W - 2).copy_(inner);
    return out;
  });
}

export function sharpnessBatch(x: Tensor, factors: ArrayLike<number>): Tensor {
  const [, , H, W] = dims4(x, 'sharpnessBatch');
  if (H <= 2 || W <= 2) return x;
  return tidy(() => blendBatch(x, blurredDegenerate(x), factors));
}

function requireUint8(x: Tensor, op: string): void {
  if (x.dtype !== 'uint8') throw new TypeError(`${op}: expected uint8 images (as torchvision), got ${x.dtype}`);
}

/** Keeps the top `bits[n]` bits of each pixel of sample n (uint8). */
export function posterizeBatch(x: Tensor, bits: ArrayLike<number>): Tensor {
  const [n] = dims4(x, 'posterizeBatch');
  requireUint8(x, 'posterizeBatch');
  checkLength(bits, n, 'posterizeBatch: bits');
  return tidy(() => {
    const q = perSample(Array.from(bits, (b) => 2 ** (8 - b)), 'float32', x.device);
    return x.float().div(q).floor().mul(q).to('uint8'); // x & -(2^(8-b)), exactly, in float
  });
}

/** Inverts the pixels at or above threshold[n] (torchvision's solarize). */
export function solarizeBatch(x: Tensor, thresholds: ArrayLike<number>): Tensor {
  const [n] = dims4(x, 'solarizeBatch');
  checkLength(thresholds, n, 'solarizeBatch: thresholds');
  // Integer pixels: x >= t exactly when x >= ceil(t), so compare in int16 rather than float64.
  const integer = !isFloating(x.dtype);
  const t = integer ? Array.from(thresholds, (v) => Math.min(256, Math.max(0, Math.ceil(v)))) : thresholds;
  return tidy(() => where(x.ge(perSample(t, integer ? 'int16' : x.dtype, x.device)), x.rsub(pixelBound(x)), x));
}

/** Stretches each channel of each sample to the full range (torchvision's autocontrast). */
export function autocontrastBatch(x: Tensor): Tensor {
  dims4(x, 'autocontrastBatch');
  return tidy(() => {
    const bound = pixelBound(x);
    const dtype: DType = isFloating(x.dtype) ? x.dtype : 'float32';
    const lo = x.amin([2, 3], true).to(dtype);
    const hi = x.amax([2, 3], true).to(dtype);
    const flat = hi.eq(lo);
    // bound / (hi - lo) as Python evaluates it: Tensor.__rdiv__ is reciprocal() * bound.
    const scale = where(flat, ones([1], { dtype, device: x.device }), hi.sub(lo).reciprocal().mul(bound));
    const min = lo.maskedFill(flat, 0);
    return x.sub(min).mul(scale).clamp(0, bound).to(x.dtype);
  });
}

/**
 * Histogram equalisation of each channel of each sample (uint8), exactly torchvision's equalize,
 * with one scatterAdd for all the histograms instead of a loop over images.
 */
export function equalizeBatch(x: Tensor): Tensor {
  const [n, c, H, W] = dims4(x, 'equalizeBatch');
  requireUint8(x, 'equalizeBatch');
  const rows = n * c;
  const count = H * W;
  return tidy(() => {
    const flat = x.reshape([rows, count]).long();
    const o = { dtype: 'int64' as const, device: x.device };
    const hist = zeros([rows, 256], o).scatterAdd(1, flat, ones([rows, count], o));
    const last = hist.gather(1, flat.amax(1, true)); // the count in the highest non-empty bin
    const step = last.rsub(count).double().div(255).floor(); // [rows, 1]
    const lut = hist.cumsum(1).double().add(step.div(2).floor()).div(step).floor();
    const shifted = cat([zeros([rows, 1], { dtype: 'float64', device: x.device }), lut.narrow(1, 0, 255)], 1).clamp(0, 255);
    const mapped = shifted.gather(1, flat);
    return where(step.eq(0), flat.double(), mapped).to('uint8').reshape([n, c, H, W]);
  });
}

/** Gathers samples (dim 0) of x by index, a small helper for per-group processing. */
export function selectSamples(x: Tensor, indices: readonly number[]): Tensor {
  const idx = indexTensor(indices, x.device);
  try {
    return x.indexSelect(0, idx);
  } finally {
    idx.dispose();
  }
}
