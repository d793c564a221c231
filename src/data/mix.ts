// Sample-mixing regularisers: mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019), batch-wise
// as in their reference code and timm: one lambda per batch, partners by a random permutation.
// Labels become soft targets [N, numClasses] (float32 probabilities), which F.crossEntropy takes.

import { isFloating, oneHot, randperm, tidy, where, type Tensor } from '../engine/index.js';
import type { Batch } from './dataset.js';
import { boxMask, dims4, type Box } from './ops.js';
import { sampleBeta, TorchDraws, torchUniform } from './rng.js';
import { makeTransform, readOptions, type OptionReader, type Transform, type TransformOptions } from './transform.js';

/**
 * Labels as probability rows [N, K]: int64 class indices become (smoothed) one-hot rows;
 * rows that are already probabilities [N, K] pass through.
 */
export function softTargets(y: Tensor, numClasses: number, labelSmoothing = 0): Tensor {
  if (y.ndim === 2) {
    if (y.size(1) !== numClasses) throw new TypeError(`soft targets: expected [N, ${numClasses}], got [${y.shape.join(', ')}]`);
    return isFloating(y.dtype) ? y : y.float();
  }
  if (y.ndim !== 1) throw new TypeError(`soft targets: expected labels [N] or probabilities [N, K], got [${y.shape.join(', ')}]`);
  return tidy(() => {
    const hot = oneHot(y.long(), numClasses).float();
    if (labelSmoothing === 0) return hot;
    const off = labelSmoothing / numClasses;
    return hot.mul(1 - labelSmoothing).add(off);
  });
}

// The permutation is drawn on the CPU (the seeded generator); the batch may live elsewhere.
function take(t: Tensor, perm: Tensor): Tensor {
  return t.indexSelect(0, perm.device === t.device ? perm : perm.to(t.device));
}

/** x*lambda + x[perm]*(1-lambda) and the same for the targets (perm: an int64 permutation tensor). */
export function mixupBatch(batch: Batch, lambda: number, perm: Tensor, numClasses: number, labelSmoothing = 0): Batch {
  dims4(batch.x, 'mixup');
  return tidy(() => {
    const xf = isFloating(batch.x.dtype) ? batch.x : batch.x.float();
    let x = xf.mul(lambda).add(take(xf, perm).mul(1 - lambda));
    if (!isFloating(batch.x.dtype)) x = x.round().clamp(0, 255).to(batch.x.dtype);
    const t = softTargets(batch.y, numClasses, labelSmoothing);
    return { x, y: t.mul(lambda).add(take(t, perm).mul(1 - lambda)) };
  });
}

/** Pastes box of x[perm] into x; targets weighted by the pasted area (1 - lambda). */
export function cutmixBatch(batch: Batch, box: Box, perm: Tensor, numClasses: number, labelSmoothing = 0): Batch {
  const [n, , H, W] = dims4(batch.x, 'cutmix');
  return tidy(() => {
    const mask = boxMask(new Array<Box>(n).fill(box), H, W, batch.x.device);
    const x = where(mask, take(batch.x, perm), batch.x);
    const lambda = 1 - (box.height * box.width) / (H * W);
    const t = softTargets(batch.y, numClasses, labelSmoothing);
    return { x, y: t.mul(lambda).add(take(t, perm).mul(1 - lambda)) };
  });
}

/** CutMix's rand_bbox: a box of area ~(1 - lambda) centred at a uniform pixel, clipped at the borders. */
export function cutmixBox(lambda: number, H: number, W: number, u: ArrayLike<number>): Box {
  const cutRat = Math.sqrt(1 - lambda);
  const cutW = Math.floor(W * cutRat);
  const cutH = Math.floor(H * cutRat);
  const cx = Math.min(W - 1, Math.floor(u[0]! * W));
  const cy = Math.min(H - 1, Math.floor(u[1]! * H));
  const clip = (v: number, hi: number): number => Math.max(0, Math.min(hi, v));
  const x1 = clip(cx - Math.floor(cutW / 2), W);
  const y1 = clip(cy - Math.floor(cutH / 2), H);
  const x2 = clip(cx + Math.floor(cutW / 2), W);
  const y2 = clip(cy + Math.floor(cutH / 2), H);
  return { top: y1, left: x1, height: y2 - y1, width: x2 - x1 };
}

interface MixCommon {
  numClasses: number;
  labelSmoothing: number;
  p: number;
}

function readCommon(r: OptionReader, smoothing: number): MixCommon {
  return {
    numClasses: r.number('numClasses', undefined, { min: 1, integer: true }),
    labelSmoothing: r.number('labelSmoothing', smoothing, { min: 0, max: 1 }),
    p: r.probability('p', 1),
  };
}

type Mixer = (batch: Batch, draws: TorchDraws) => Batch;

// Training: with probability p mix, else only soften the labels (so targets keep one dtype).
function mixTransform(name: string, options: object, common: MixCommon, mix: Mixer): Transform {
  return makeTransform(name, options as TransformOptions, (batch, training) => {
    if (!training) return batch;
    const draws = new TorchDraws(8);
    if (draws.uniform() >= common.p) return { x: batch.x, y: softTargets(batch.y, common.numClasses, common.labelSmoothing) };
    return mix(batch, draws);
  });
}

export interface MixupOptions {
  /** Beta(alpha, alpha) for lambda; default 0.2 (the paper's ImageNet setting). */
  alpha?: number;
  numClasses: number;
  labelSmoothing?: number;
  /** Probability of mixing a batch; default 1. */
  p?: number;
}

export function mixup(options: MixupOptions): Transform {
  const o = readOptions('mixup', options, (r) => ({ alpha: r.number('alpha', 0.2, { min: 1e-6 }), ...readCommon(r, 0) }));
  return mixTransform('mixup', o, o, (batch, draws) => {
    const lambda = sampleBeta(o.alpha, o.alpha, draws);
    const perm = randperm(batch.x.size(0));
    return mixupBatch(batch, lambda, perm, o.numClasses, o.labelSmoothing);
  });
}

export interface CutmixOptions {
  /** Beta(alpha, alpha) for lambda; default 1 (the paper's setting). */
  alpha?: number;
  numClasses: number;
  labelSmoothing?: number;
  p?: number;
}

function cutmixWith(batch: Batch, alpha: number, common: MixCommon, draws: TorchDraws): Batch {
  const [n, , H, W] = dims4(batch.x, 'cutmix');
  const lambda = sampleBeta(alpha, alpha, draws);
  const box = cutmixBox(lambda, H, W, torchUniform(2));
  const perm = randperm(n);
  return cutmixBatch(batch, box, perm, common.numClasses, common.labelSmoothing);
}

export function cutmix(options: CutmixOptions): Transform {
  const o = readOptions('cutmix', options, (r) => ({ alpha: r.number('alpha', 1, { min: 1e-6 }), ...readCommon(r, 0) }));
  return mixTransform('cutmix', o, o, (batch, draws) => cutmixWith(batch, o.alpha, o, draws));
}

export interface MixupCutmixOptions {
  mixupAlpha?: number;
  cutmixAlpha?: number;
  /** Probability of cutmix rather than mixup for a batch; default 0.5. */
  switchProb?: number;
  numClasses: number;
  /** default 0.1, as timm's Mixup */
  labelSmoothing?: number;
  p?: number;
}

/** timm's Mixup with both enabled: each batch gets cutmix (switchProb) or mixup. */
export function mixupCutmix(options: MixupCutmixOptions): Transform {
  const o = readOptions('mixupCutmix', options, (r) => ({
    mixupAlpha: r.number('mixupAlpha', 0.8, { min: 1e-6 }),
    cutmixAlpha: r.number('cutmixAlpha', 1, { min: 1e-6 }),
    switchProb: r.probability('switchProb', 0.5),
    ...readCommon(r, 0.1),
  }));
  return mixTransform('mixupCutmix', o, o, (batch, draws) => {
    if (draws.uniform() < o.switchProb) return cutmixWith(batch, o.cutmixAlpha, o, draws);
    const lambda = sampleBeta(o.mixupAlpha, o.mixupAlpha, draws);
    return mixupBatch(batch, lambda, randperm(batch.x.size(0)), o.numClasses, o.labelSmoothing);
  });
}
