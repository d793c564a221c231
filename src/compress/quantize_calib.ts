// Calibration math for int8 quantization: observers that collect an activation's range and
// histogram, the four ways to turn them into a clipping range (minmax, percentile, mse, entropy),
// and the quantization parameters of activations (uint8, per tensor, asymmetric), weights (int8,
// per output channel, symmetric) and biases (int32 at the input scale x the weight scale).
// Plain numbers, no libtorch (quant_grid.ts loads no addon), no ONNX: every function here is checked by hand in the tests.

import { uint8Params as uint8RangeParams } from '../engine/quant_grid.js';

export const CALIB_METHODS = ['minmax', 'percentile', 'mse', 'entropy'] as const;
export type CalibMethod = (typeof CALIB_METHODS)[number];

export interface Range { lo: number; hi: number }
export interface QParams { scale: number; zeroPoint: number }

export interface CalibOptions {
  /** histogram bins (percentile, mse, entropy); default 2048, TensorRT's */
  bins?: number;
  /** percentile kept (default 99.99) */
  percentile?: number;
  /** entropy: quantized levels of the candidate distributions; default 255 for a non-negative tensor, 128 otherwise */
  quantBins?: number;
  /** mse: clipping factors tried, k / steps for k = 1..steps (default 128) */
  mseSteps?: number;
}

export const DEFAULT_BINS = 2048;

/** Whether a method needs a histogram (a second calibration pass over the data). */
export const needsHistogram = (m: CalibMethod): boolean => m !== 'minmax';

/**
 * An activation's statistics across calibration batches: min and max in a first pass, then (for
 * the histogram methods) a histogram over that fixed range in a second pass, so no re-binning
 * approximation enters. The entropy method bins |x| over [0, max |x|] as TensorRT does.
 */
export class TensorObserver {
  min = Infinity;
  max = -Infinity;
  count = 0;
  hist: Float64Array | null = null;
  histLo = 0;
  histHi = 0;
  absolute = false;

  observeRange(data: ArrayLike<number>): void {
    let mn = this.min, mx = this.max;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (Number.isNaN(mn) || Number.isNaN(mx)) throw new Error('calibration: an activation holds NaN');
    this.min = mn;
    this.max = mx;
    this.count += data.length;
  }

  /** Starts the histogram over the observed range (call after the range pass). */
  startHistogram(bins: number, absolute: boolean): void {
    this.absolute = absolute;
    this.histLo = absolute ? 0 : Math.min(this.min, 0);
    this.histHi = absolute ? Math.max(Math.abs(this.min), Math.abs(this.max)) : Math.max(this.max, 0);
    this.hist = new Float64Array(bins);
  }

  observeHistogram(data: ArrayLike<number>): void {
    const h = this.hist;
    if (!h) throw new Error('observeHistogram before startHistogram');
    addToHistogram(h, data, this.histLo, this.histHi, this.absolute);
  }
}

/** Adds values (or |values|) to a histogram of h.length equal bins over [lo, hi]; values outside go to the end bins. */
export function addToHistogram(h: Float64Array, data: ArrayLike<number>, lo: number, hi: number, absolute = false): void {
  const bins = h.length;
  const width = (hi - lo) / bins;
  if (!(width > 0)) {
    h[0] += data.length;
    return;
  }
  const inv = 1 / width;
  for (let i = 0; i < data.length; i++) {
    const v = absolute ? Math.abs(data[i]) : data[i];
    let b = Math.floor((v - lo) * inv);
    if (b < 0) b = 0;
    else if (b >= bins) b = bins - 1;
    h[b]++;
  }
}

/** The range always holds 0, so that zero (padding, ReLU's floor) is exact. */
export function minmaxRange(min: number, max: number): Range {
  return { lo: Math.min(min, 0), hi: Math.max(max, 0) };
}

/**
 * Drops (100 - p) % of the values at each end: lo is the lower edge of the first bin where the
 * cumulative count exceeds (1 - p/100) of the total, hi the upper edge of the first bin where it
 * reaches p/100 of it (ONNX Runtime's percentile calibrator, on a signed histogram).
 */
export function percentileRange(h: Float64Array, lo: number, hi: number, p: number): Range {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const total = h.reduce((a, b) => a + b, 0);
  const width = (hi - lo) / h.length;
  let cum = 0, left = -1, right = h.length - 1;
  for (let i = 0; i < h.length; i++) {
    cum += h[i];
    if (left < 0 && cum > total * (1 - p / 100)) left = i;
    if (cum >= total * (p / 100)) { right = i; break; }
  }
  if (left < 0) left = 0;
  return minmaxRange(lo + left * width, lo + (right + 1) * width);
}

/** uint8 parameters of a range (lo <= 0 <= hi): scale (hi - lo) / 255, the zero point where 0 lands. */
export const uint8Params = (r: Range): QParams => uint8RangeParams(r.lo, r.hi);

/** x through uint8 quantization and back. */
export function fakeQuantUint8(x: number, q: QParams): number {
  const v = Math.min(255, Math.max(0, Math.round(x / q.scale) + q.zeroPoint));
  return (v - q.zeroPoint) * q.scale;
}

/** The squared error a histogram (values at bin centres) suffers under q's quantization. */
export function histogramMse(h: Float64Array, lo: number, hi: number, q: QParams): number {
  const width = (hi - lo) / h.length;
  let err = 0;
  for (let i = 0; i < h.length; i++) {
    if (h[i] === 0) continue;
    const c = lo + (i + 0.5) * width;
    const d = c - fakeQuantUint8(c, q);
    err += h[i] * d * d;
  }
  return err;
}

/**
 * The clipping range [f lo, f hi] (f = k / steps, k = 1..steps) whose uint8 quantization has the
 * least squared error over the histogram: rounding error against clipping error.
 */
export function mseRange(h: Float64Array, lo: number, hi: number, steps = 128): Range {
  let best: Range = { lo, hi };
  let bestErr = Infinity;
  for (let k = steps; k >= 1; k--) {
    const r = { lo: (lo * k) / steps, hi: (hi * k) / steps };
    const err = histogramMse(h, lo, hi, uint8Params(r));
    // ties keep the wider range
    if (err < bestErr) { bestErr = err; best = r; }
  }
  return minmaxRange(best.lo, best.hi);
}

/** KL(p || q) of two unnormalised distributions, normalised first (scipy.stats.entropy). */
export function klDivergence(p: Float64Array, q: Float64Array): number {
  const sp = p.reduce((a, b) => a + b, 0), sq = q.reduce((a, b) => a + b, 0);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    const a = p[i] / sp, b = q[i] / sq;
    kl += a * Math.log(a / b);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration (Migacz, GTC 2017, as MXNet and TVM implement it) on a histogram
 * of |x| over [0, maxAbs]: for each cut i >= quantBins, the reference P is the first i bins with
 * the outliers added to the last, the candidate Q is the same bins merged into quantBins levels
 * and spread back over P's non-zero bins; both smoothed, the cut with the least KL(P || Q) wins.
 * The threshold is the cut's upper edge. The zero bin counts as its neighbour does (as NVIDIA's
 * pytorch-quantization does): after a ReLU half the values are exact zeros, and that spike, spread
 * over a merged level, dominates the KL and pulls the cut in, to 1.6 sigma on a rectified Gaussian.
 */
export function entropyThreshold(histogram: Float64Array, maxAbs: number, quantBins: number): number {
  const bins = histogram.length;
  const width = maxAbs / bins;
  if (bins <= quantBins) return maxAbs;
  const h = histogram.slice();
  h[0] = h[1];
  const eps = 1e-4;
  let bestKl = Infinity, bestI = bins;
  let outliers = 0;
  for (let i = bins - 1; i >= quantBins; i--) outliers += h[i];
  // one buffer for Q; P is h with the outliers in its last bin, read in place. Smoothing moves eps
  // onto the zero bins and takes it evenly from the others, so the sums stay those of P and Q.
  const q = new Float64Array(bins);
  for (let i = quantBins; i <= bins; i++) {
    if (i > quantBins) outliers -= h[i - 1];
    const p = (k: number): number => (k === i - 1 ? h[k] + outliers : h[k]);
    q.fill(0, 0, i);
    for (let j = 0; j < quantBins; j++) {
      const start = Math.floor((j * i) / quantBins), end = j === quantBins - 1 ? i : Math.floor(((j + 1) * i) / quantBins);
      let total = 0, nonzero = 0;
      for (let k = start; k < end; k++) { total += h[k]; if (p(k) !== 0) nonzero++; }
      if (nonzero === 0) continue;
      for (let k = start; k < end; k++) if (p(k) !== 0) q[k] = total / nonzero;
    }
    let sp = 0, sq = 0, zp = 0, zq = 0;
    for (let k = 0; k < i; k++) {
      const pk = p(k);
      sp += pk; sq += q[k];
      if (pk === 0) zp++;
      if (q[k] === 0) zq++;
    }
    if (zp === i || zq === i) continue;
    const takeP = (eps * zp) / (i - zp), takeQ = (eps * zq) / (i - zq);
    let kl = 0;
    for (let k = 0; k < i; k++) {
      const pk = p(k);
      const a = (pk === 0 ? eps : pk - takeP) / sp, b = (q[k] === 0 ? eps : q[k] - takeQ) / sq;
      kl += a * Math.log(a / b);
    }
    if (kl < bestKl) { bestKl = kl; bestI = i; }
  }
  return bestI * width;
}

/** The clipping range an observer's statistics give under a method. */
export function observedRange(obs: TensorObserver, method: CalibMethod, o: CalibOptions = {}): Range {
  if (obs.count === 0) throw new Error('calibration: a tensor was never observed');
  if (method === 'minmax') return minmaxRange(obs.min, obs.max);
  if (!obs.hist) throw new Error(`calibration: method ${method} needs a histogram`);
  switch (method) {
    case 'percentile': return percentileRange(obs.hist, obs.histLo, obs.histHi, o.percentile ?? 99.99);
    case 'mse': return mseRange(obs.hist, obs.histLo, obs.histHi, o.mseSteps ?? 128);
    case 'entropy': {
      const nonNegative = obs.min >= 0;
      const t = entropyThreshold(obs.hist, obs.histHi, o.quantBins ?? (nonNegative ? 255 : 128));
      // the symmetric threshold clips each side, never widens it
      return minmaxRange(Math.max(obs.min, -t), Math.min(obs.max, t));
    }
  }
}

/**
 * Symmetric int8 per output channel: scale_c = max |w_c| / 127, values in [-127, 127] (the
 * restricted range: no -128, so u8 x s8 pair sums cannot saturate on kernels without VNNI).
 * `axis` is the output-channel axis of `dims`.
 */
export function quantizePerChannel(w: Float32Array, dims: number[], axis: number): { q: Int8Array; scales: Float32Array } {
  if (axis < 0 || axis >= dims.length) throw new RangeError(`quantizePerChannel: axis ${axis} out of range for dims [${dims.join(', ')}]`);
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  if (outer * channels * inner !== w.length) throw new RangeError(`quantizePerChannel: ${w.length} values for dims [${dims.join(', ')}]`);
  const scales = new Float32Array(channels);
  const at = (o: number, c: number, i: number): number => (o * channels + c) * inner + i;
  for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) scales[c] = Math.max(scales[c], Math.abs(w[at(o, c, i)]));
  for (let c = 0; c < channels; c++) scales[c] = scales[c] > 0 ? scales[c] / 127 : 1;
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) {
    const k = at(o, c, i);
    q[k] = Math.max(-127, Math.min(127, Math.round(w[k] / scales[c])));
  }
  return { q, scales };
}

/** int32 bias at scale xScale * wScale_c (zero point 0), as the integer kernels add it. */
export function quantizeBias(b: Float32Array, xScale: number, wScales: Float32Array): { q: Int32Array; scales: Float32Array } {
  if (b.length !== wScales.length) throw new RangeError(`quantizeBias: ${b.length} biases for ${wScales.length} channel scales`);
  const scales = wScales.map((s) => Math.fround(s * xScale));
  const q = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) q[c] = Math.max(-(2 ** 31) + 1, Math.min(2 ** 31 - 1, Math.round(b[c] / scales[c])));
  return { q, scales };
}
