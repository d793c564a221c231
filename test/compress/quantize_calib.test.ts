// Calibration and quantization-parameter math against hand computations on small arrays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addToHistogram, entropyThreshold, fakeQuantUint8, klDivergence, minmaxRange, mseRange, observedRange, percentileRange, quantizeBias, quantizePerChannel,
  TensorObserver, uint8Params, histogramMse,
} from '../../src/compress/quantize_calib.js';
import { prng } from '../helpers/prng.js';

const close = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('minmax: the range always holds 0; uint8 scale and zero point by hand', () => {
  assert.deepEqual(minmaxRange(0.5, 3), { lo: 0, hi: 3 });
  assert.deepEqual(minmaxRange(-2, -1), { lo: -2, hi: 0 });
  const q = uint8Params({ lo: -1, hi: 3 });
  close(q.scale, 4 / 255);
  assert.equal(q.zeroPoint, 64); // round(1 / (4 / 255)) = round(63.75)
  // 0 is exact, the ends land on the grid's ends, values beyond clip
  assert.equal(fakeQuantUint8(0, q), 0);
  close(fakeQuantUint8(100, q), (255 - 64) * q.scale);
  close(fakeQuantUint8(-100, q), -64 * q.scale);
  // a non-negative range (after a ReLU) has zero point 0
  assert.equal(uint8Params({ lo: 0, hi: 6 }).zeroPoint, 0);
  assert.deepEqual(uint8Params({ lo: 0, hi: 0 }), { scale: 1, zeroPoint: 0 });
  const o = new TensorObserver();
  o.observeRange([0.5, -0.25, 2]);
  o.observeRange([1.5]);
  assert.deepEqual([o.min, o.max, o.count], [-0.25, 2, 4]);
  assert.deepEqual(observedRange(o, 'minmax'), { lo: -0.25, hi: 2 });
});

test('percentile: the bins where the cumulative count crosses each tail, by hand', () => {
  // bins of width 1 over [-4, 4]: one value at -3.5, 96 at -0.5, 3 at 3.5
  const h = Float64Array.from([1, 0, 0, 96, 0, 0, 0, 3]);
  // p = 98: the low tail (2 values) ends inside bin 3 -> lo = -1; the high side needs all 100 -> hi = 4
  assert.deepEqual(percentileRange(h, -4, 4, 98), { lo: -1, hi: 4 });
  // p = 96: 96 values are reached at bin 3 -> hi = 0
  assert.deepEqual(percentileRange(h, -4, 4, 96), { lo: -1, hi: 0 });
  assert.deepEqual(percentileRange(h, -4, 4, 100), { lo: -4, hi: 4 });
  assert.throws(() => percentileRange(h, -4, 4, 0), /percentile must be in \(0, 100\]/);
  // through the observer: 10000 values 0..9999 and the default 99.99: the top value's bin is cut
  const o = new TensorObserver();
  const data = Float32Array.from({ length: 10000 }, (_, i) => i);
  o.observeRange(data);
  o.startHistogram(10000, false);
  o.observeHistogram(data);
  const r = observedRange(o, 'percentile');
  assert.equal(r.lo, 0);
  close(r.hi, 9999 * (9999 / 10000), 1e-6);
});

test('mse: the clipping factor with the least squared error, against brute force over the values', () => {
  // values at the bin centres, so the histogram is exact: a bulk in [-1, 1] and a few far outliers
  const bins = 400, lo = -2, hi = 20, w = (hi - lo) / bins;
  const h = new Float64Array(bins);
  const values: [number, number][] = [];
  const put = (bin: number, n: number): void => { h[bin] += n; values.push([lo + (bin + 0.5) * w, n]); };
  for (let b = 0; b < 55; b++) put(b, 20000 + 1000 * (b % 7));
  put(bins - 1, 1);
  let best = Infinity, bestK = 0;
  for (let k = 128; k >= 1; k--) {
    const q = uint8Params({ lo: (lo * k) / 128, hi: (hi * k) / 128 });
    const err = values.reduce((s, [v, n]) => s + n * (v - fakeQuantUint8(v, q)) ** 2, 0);
    if (err < best - 1e-12) { best = err; bestK = k; }
  }
  const r = mseRange(h, lo, hi, 128);
  close(r.hi, (hi * bestK) / 128, 1e-9);
  close(r.lo, (lo * bestK) / 128, 1e-9);
  close(histogramMse(h, lo, hi, uint8Params(r)), best, 1e-6 * best);
  // the outlier is clipped; uniform data without outliers keeps its whole range
  assert.ok(r.hi < hi);
  const flat = new Float64Array(256).fill(1);
  assert.deepEqual(mseRange(flat, 0, 1, 128), { lo: 0, hi: 1 });
});

test('entropy: TensorRT\'s KL threshold on a 5-bin histogram, by hand; a ReLU\'s zeros do not pull it in', () => {
  // |x| histogram [9, 4, 2, 0, 1] over [0, 5], 2 quantized levels. The zero bin counts as its
  // neighbour: [4, 4, 2, 0, 1]. KL(P || Q) of each cut:
  //   i = 2: P = [4, 7] (outliers folded in), Q = [4, 4]                    -> 0.0377
  //   i = 3: P = [4, 4, 3], Q = [4, 3, 3]                                   -> 0.0093
  //   i = 4: P = [4, 4, 2, 1], Q = [4, 4, 1, 1]                             -> 0.0307
  //   i = 5: P = [4, 4, 2, 0, 1], Q = [4, 4, 1.5, 0, 1.5] (both smoothed)   -> ~0.015
  // so the cut is at bin 3: threshold 3
  close(klDivergence(Float64Array.from([4, 7]), Float64Array.from([4, 4])), 0.037665, 1e-5);
  close(klDivergence(Float64Array.from([4, 4, 3]), Float64Array.from([4, 3, 3])), 0.009301, 1e-5);
  close(klDivergence(Float64Array.from([4, 4, 2, 1]), Float64Array.from([4, 4, 1, 1])), 0.030717, 1e-5);
  assert.equal(entropyThreshold(Float64Array.from([9, 4, 2, 0, 1]), 5, 2), 3);
  // a rectified Gaussian (half its values exact zeros) keeps nearly its whole range (the
  // spike counted as it is would cut it at 1.6 sigma)
  const uniform = prng(1);
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]
  const relu = Float32Array.from({ length: 100000 }, () => Math.max(0, Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())));
  const h = new Float64Array(2048);
  const max = relu.reduce((a, b) => Math.max(a, b), 0);
  addToHistogram(h, relu, 0, max, true);
  const t = entropyThreshold(h, max, 255);
  assert.ok(t > 3, `threshold ${t} of max ${max}`);
  // a flat histogram loses nothing at the full range
  assert.equal(entropyThreshold(Float64Array.from([1, 1, 1, 1]), 4, 2), 4);
  // through the observer: a signed tensor with a far outlier is clipped on both sides by |x|'s threshold
  const o = new TensorObserver();
  const data = Float32Array.from({ length: 20000 }, (_, i) => Math.sin(i * 0.37) * (i % 3 === 0 ? 1 : 0.5));
  data[7] = 40;
  o.observeRange(data);
  o.startHistogram(2048, true);
  o.observeHistogram(data);
  const r = observedRange(o, 'entropy');
  assert.ok(r.hi < 5 && r.hi >= 1, `threshold ${r.hi}`);
  assert.equal(r.lo, Math.max(o.min, -r.hi));
});

test('weights: int8 symmetric per output channel on either axis; biases int32 at input x weight scale', () => {
  const w = Float32Array.from([0.5, -1.27, 0.1, 2.54, 0, -0.3]);
  const a0 = quantizePerChannel(w, [2, 3], 0);
  close(a0.scales[0], 0.01);
  close(a0.scales[1], 0.02);
  assert.deepEqual([...a0.q], [50, -127, 10, 127, 0, -15]);
  const a1 = quantizePerChannel(w, [2, 3], 1);
  close(a1.scales[0], 0.02);
  close(a1.scales[1], 0.01);
  close(a1.scales[2], 0.3 / 127);
  assert.deepEqual([...a1.q], [25, -127, 42, 127, 0, -127]);
  // an all-zero channel keeps a usable scale
  assert.deepEqual([...quantizePerChannel(new Float32Array(4), [2, 2], 0).scales], [1, 1]);
  assert.throws(() => quantizePerChannel(w, [4, 2], 0), /6 values for dims \[4, 2\]/);
  const b = quantizeBias(Float32Array.from([0.1, -0.2]), 0.05, Float32Array.from([0.01, 0.02]));
  assert.deepEqual([...b.q], [200, -200]);
  close(b.scales[0], 5e-4);
  close(b.scales[1], 1e-3);
});
