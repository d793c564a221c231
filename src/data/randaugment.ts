// RandAugment (Cubuk et al. 2020), the augmentation of EfficientNet's training recipe: each image
// gets N operations drawn uniformly from a fixed list, all at one magnitude M.
//
// The op list, magnitude tables and pixel arithmetic are torchvision's (transforms.RandAugment,
// 0.14), so a batch augmented here matches torchvision image by image for the same ops and
// signs. The batch is processed op by op: the samples that drew an op are gathered, the op runs
// on them with per-sample magnitudes, and the results are put back in place.

import { cat, linspace, tensor, tidy, type Tensor } from '../engine/index.js';
import {
  affineBatch, autocontrastBatch, brightnessBatch, contrastBatch, degrees, dims4, equalizeBatch,
  inverseAffineMatrix, posterizeBatch, saturationBatch, selectSamples, sharpnessBatch, solarizeBatch,
  type WarpOptions,
} from './ops.js';
import { torchUniform } from './rng.js';
import { makeTransform, readOptions, type Transform } from './transform.js';
import { indexTensor } from './dataset.js';

/** torchvision's RandAugment op list, in its order (camelCase names). */
export const RAND_AUGMENT_OPS = [
  'identity', 'shearX', 'shearY', 'translateX', 'translateY', 'rotate', 'brightness', 'color', 'contrast',
  'sharpness', 'posterize', 'solarize', 'autocontrast', 'equalize',
] as const;
export type RandAugmentOp = (typeof RAND_AUGMENT_OPS)[number];

interface OpMeta {
  /** Magnitude per bin, or null for ops without one. */
  table: Float64Array | null;
  signed: boolean;
}

// Tables come from libtorch's own linspace/round, so the float32 values equal torchvision's.
function table(make: () => Tensor): Float64Array {
  return tidy(() => Float64Array.from(make().double().toTypedArray() as Float64Array));
}

/** torchvision's RandAugment._augmentation_space(num_bins, (H, W)). */
export function augmentationSpace(bins: number, height: number, width: number): Record<RandAugmentOp, OpMeta> {
  const lin = (end: number, start = 0): Float64Array => table(() => linspace(start, end, bins));
  const signed = (t: Float64Array): OpMeta => ({ table: t, signed: true });
  const none: OpMeta = { table: null, signed: false };
  return {
    identity: none,
    shearX: signed(lin(0.3)),
    shearY: signed(lin(0.3)),
    translateX: signed(lin((150 / 331) * width)),
    translateY: signed(lin((150 / 331) * height)),
    rotate: signed(lin(30)),
    brightness: signed(lin(0.9)),
    color: signed(lin(0.9)),
    contrast: signed(lin(0.9)),
    sharpness: signed(lin(0.9)),
    posterize: { table: table(() => tensor(Float64Array.from({ length: bins }, (_, i) => i), { dtype: 'int64' }).div((bins - 1) / 4).round().rsub(8)), signed: false },
    solarize: { table: lin(0, 255), signed: false },
    autocontrast: none,
    equalize: none,
  };
}

const affine = (x: Tensor, params: (m: number) => Parameters<typeof inverseAffineMatrix>[0], mags: ArrayLike<number>, o: WarpOptions): Tensor =>
  affineBatch(x, Array.from(mags).flatMap((m) => inverseAffineMatrix(params(m))), o);

/**
 * Applies one RandAugment op to every sample of a uint8 batch, sample n at signed magnitude
 * magnitudes[n] (torchvision's _apply_op). Returns x itself for 'identity'.
 */
export function applyRandAugmentOp(x: Tensor, op: RandAugmentOp, magnitudes: ArrayLike<number>, o: WarpOptions = {}): Tensor {
  const [, , H, W] = dims4(x, `randAugment ${op}`);
  const factors = (): number[] => Array.from(magnitudes, (m) => 1 + m);
  // Shears pivot on the top-left corner (torchvision passes center=[0, 0] to F.affine).
  const corner: [number, number] = [-W * 0.5, -H * 0.5];
  switch (op) {
    case 'identity': return x;
    case 'shearX': return affine(x, (m) => ({ shear: [degrees(Math.atan(m)), 0], center: corner }), magnitudes, o);
    case 'shearY': return affine(x, (m) => ({ shear: [0, degrees(Math.atan(m))], center: corner }), magnitudes, o);
    case 'translateX': return affine(x, (m) => ({ translate: [Math.trunc(m), 0] }), magnitudes, o);
    case 'translateY': return affine(x, (m) => ({ translate: [0, Math.trunc(m)] }), magnitudes, o);
    case 'rotate': return affine(x, (m) => ({ angle: -m }), magnitudes, o);
    case 'brightness': return brightnessBatch(x, factors());
    case 'color': return saturationBatch(x, factors());
    case 'contrast': return contrastBatch(x, factors());
    case 'sharpness': return sharpnessBatch(x, factors());
    case 'posterize': return posterizeBatch(x, Array.from(magnitudes, Math.trunc));
    case 'solarize': return solarizeBatch(x, magnitudes);
    case 'autocontrast': return autocontrastBatch(x);
    case 'equalize': return equalizeBatch(x);
  }
}

export interface RandAugmentOptions {
  /** Ops per image (N); default 2. */
  numOps?: number;
  /** Magnitude index M in [0, numMagnitudeBins); default 9 (EfficientNet and torchvision use 9). */
  magnitude?: number;
  numMagnitudeBins?: number;
  interpolation?: 'nearest' | 'bilinear';
  /** Fill of pixels warped in from outside; 0 (default) is torchvision's fill=None. */
  fill?: number;
  /** A subset of RAND_AUGMENT_OPS to draw from; default all 14. */
  ops?: RandAugmentOp[];
}

// Runs each op on the samples that drew it, then restores the batch order.
function applyLayer(x: Tensor, choice: number[], mags: number[], ops: readonly RandAugmentOp[], o: WarpOptions): Tensor {
  const groups = new Map<number, number[]>();
  choice.forEach((k, n) => (groups.get(k) ?? groups.set(k, []).get(k)!).push(n));
  if (groups.size === 1) return applyRandAugmentOp(x, ops[choice[0]!]!, mags, o);
  return tidy(() => {
    const order: number[] = [];
    const parts = [...groups].map(([k, members]) => {
      order.push(...members);
      return applyRandAugmentOp(selectSamples(x, members), ops[k]!, members.map((n) => mags[n]!), o);
    });
    const inverse = new Array<number>(order.length);
    order.forEach((n, pos) => (inverse[n] = pos));
    return cat(parts, 0).indexSelect(0, indexTensor(inverse, x.device));
  });
}

/**
 * RandAugment on uint8 batches [N, C, H, W] (place it before toFloat/normalize). Per sample
 * and per layer, an op and a sign are drawn from libtorch's generator. Evaluation: identity.
 */
export function randAugment(options: RandAugmentOptions = {}): Transform {
  const o = readOptions('randAugment', options, (r) => {
    const bins = r.number('numMagnitudeBins', 31, { min: 2, integer: true });
    const ops = (r.value('ops') ?? [...RAND_AUGMENT_OPS]) as RandAugmentOp[];
    if (!Array.isArray(ops) || ops.length === 0 || !ops.every((op) => RAND_AUGMENT_OPS.includes(op))) {
      throw new TypeError(`randAugment: option 'ops' must be a non-empty list of ${RAND_AUGMENT_OPS.join(', ')}; got ${JSON.stringify(ops)}`);
    }
    return {
      numOps: r.number('numOps', 2, { min: 0, integer: true }),
      magnitude: r.number('magnitude', 9, { min: 0, max: bins - 1, integer: true }),
      numMagnitudeBins: bins,
      interpolation: r.oneOf('interpolation', ['nearest', 'bilinear'] as const, 'nearest'),
      fill: r.number('fill', 0),
      ops: [...ops],
    };
  });
  const spaces = new Map<string, Record<RandAugmentOp, OpMeta>>();
  return makeTransform('randAugment', o, (batch, training) => {
    if (!training || o.numOps === 0) return batch;
    const [n, c, H, W] = dims4(batch.x, 'randAugment');
    if (batch.x.dtype !== 'uint8') {
      throw new TypeError(`randAugment: expected uint8 images (place it before toFloat/normalize), got ${batch.x.dtype}`);
    }
    if (c !== 1 && c !== 3) throw new TypeError(`randAugment: expected 1 or 3 channels, got ${c}`);
    const key = `${H}x${W}`;
    const space = spaces.get(key) ?? spaces.set(key, augmentationSpace(o.numMagnitudeBins, H, W)).get(key)!;
    let x = batch.x;
    for (let layer = 0; layer < o.numOps; layer++) {
      const u = torchUniform(2 * n);
      const choice = Array.from({ length: n }, (_, k) => Math.min(o.ops.length - 1, Math.floor(u[2 * k]! * o.ops.length)));
      const mags = choice.map((k, s) => {
        const meta = space[o.ops[k]!];
        const m = meta.table === null ? 0 : meta.table[o.magnitude]!;
        return meta.signed && u[2 * s + 1]! < 0.5 ? -m : m;
      });
      x = applyLayer(x, choice, mags, o.ops, { interpolation: o.interpolation, fill: o.fill });
    }
    return { x, y: batch.y };
  });
}
