// Integrated Gradients and occlusion against hand computations on models simple enough to
// integrate by hand; the heat-map helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { Module } from '../../src/nn/index.js';
import { colorize, integratedGradients, jet, normalizeMap, occlusion, overlay, windowStarts } from '../../src/explain/index.js';

/** logits = [sum(w * x), -sum(w * x)]: linear, so IG is exactly (x - baseline) * w. */
class Linear2 extends Module {
  constructor(readonly w: Tensor) { super(); }
  forward(x: Tensor): Tensor {
    const s = x.mul(this.w).sum([1, 2, 3]).unsqueeze(1);
    return tensor([1, -1], { dtype: 'float32' }).reshape([1, 2]).mul(s);
  }
}

/** logits = [sum(x^2), 0]: IG's path integral of 2 a x * x da from 0 to 1 is x^2 per pixel. */
class Square extends Module {
  forward(x: Tensor): Tensor {
    const s = x.pow(2).sum([1, 2, 3]).unsqueeze(1);
    return s.mul(tensor([1, 0], { dtype: 'float32' }).reshape([1, 2]));
  }
}

test('Integrated Gradients: exact on a linear model, (x - b) * w; x^2 on a quadratic one', () => {
  const w = tensor(Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => Math.sin(i + 1)), { shape: [1, 2, 3, 3] });
  const x = tensor(Float32Array.from({ length: 18 }, (_, i) => Math.cos(i)), { shape: [1, 2, 3, 3] });
  const b = tensor(Float32Array.from({ length: 18 }, () => 0.25), { shape: [1, 2, 3, 3] });
  const r = integratedGradients(new Linear2(w), x, { baseline: b, steps: 4, classIndex: 1 });
  const expected = tidy(() => x.sub(b).mul(w).mul(-1).squeeze(0));
  assert.ok(tidy(() => r.attributions.sub(expected).abs().max().item()) < 1e-6);
  assert.ok(r.completenessError < 1e-5);
  const q = integratedGradients(new Square(), x, { steps: 2, batchSize: 1 });
  // the trapezoidal rule is exact for the integrand 2 a x^2, linear in a
  assert.ok(tidy(() => q.attributions.sub(x.pow(2).squeeze(0)).abs().max().item()) < 1e-5);
  assert.equal(q.classIndex, 0);
  assert.throws(() => integratedGradients(new Square(), x, { steps: 0 }), /steps must be an integer in 1\.\.4096/);
  assert.throws(() => integratedGradients(new Square(), x, { baseline: tensor([0]) }), /baseline has shape \[1\], expected the input's \[1, 2, 3, 3\]/);
});

/** logits = [10 * mean of the top-left 2x2 block, 0]: only patches over that block matter. */
class Corner extends Module {
  forward(x: Tensor): Tensor {
    const s = x.narrow(2, 0, 2).narrow(3, 0, 2).mean([1, 2, 3]).mul(10).unsqueeze(1);
    return s.mul(tensor([1, 0], { dtype: 'float32' }).reshape([1, 2]));
  }
}

test('occlusion: the drop in probability averaged over the patches covering each pixel, by hand', () => {
  const x = tensor(Float32Array.from({ length: 16 }, () => 1), { shape: [1, 1, 4, 4] });
  const r = occlusion(new Corner(), x, { window: 2, stride: 2, fill: [0] });
  // four patches; only the top-left one changes the score: from 10 to 0
  const p = (s: number): number => 1 / (1 + Math.exp(-s));
  const drop = p(10) - p(0);
  const m = r.map.toArray() as number[][];
  const want = [[drop, drop, 0, 0], [drop, drop, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.ok(Math.abs(m[i][j] - want[i][j]) < 1e-6, `(${i}, ${j})`);
  assert.ok(Math.abs(r.probability - p(10)) < 1e-6);
  // overlapping patches at stride 1: pixel (1, 1) lies under 4 patches, which hide 4, 2, 2 and 1
  // of the block's 4 pixels; pixel (3, 3) under one that hides none
  const o = occlusion(new Corner(), x, { window: 2, stride: 1 });
  const om = o.map.toArray() as number[][];
  const want11 = (4 * p(10) - p(0) - 2 * p(5) - p(7.5)) / 4;
  assert.ok(Math.abs(om[1][1] - want11) < 1e-6, `(1, 1): ${om[1][1]} vs ${want11}`);
  assert.ok(Math.abs(om[3][3]) < 1e-7);
  assert.deepEqual(windowStarts(4, 2, 1), [0, 1, 2]);
  assert.deepEqual(windowStarts(5, 2, 2), [0, 2, 3], 'a last patch flush with the edge');
  assert.deepEqual(windowStarts(3, 3, 2), [0]);
  assert.throws(() => occlusion(new Corner(), x, { window: 5 }), /window must be an integer in 1\.\.4/);
});

test('heat-map helpers: normalisation, the jet colours, the blend', () => {
  assert.deepEqual([...normalizeMap(Float32Array.from([2, 4, 3]))], [0, 1, 0.5]);
  assert.deepEqual([...normalizeMap(Float32Array.from([3, 3]))], [0, 0], 'a constant map is all zeros');
  assert.deepEqual(jet(0), [0, 0, 0.5]);
  assert.deepEqual(jet(1), [0.5, 0, 0]);
  assert.deepEqual(jet(0.5), [0.5, 1, 0.5]);
  const c = colorize(Float32Array.from([0, 1]));
  assert.deepEqual([...c], [0, 128, 0, 0, 128, 0]);
  // gray image 100 and the map's red at full heat, half and half
  const o = overlay(Uint8Array.from([100, 100]), 1, Float32Array.from([0, 1]), 0.5);
  assert.deepEqual([...o], [50, 114, 50, 50, 114, 50]);
  assert.throws(() => overlay(Uint8Array.from([1, 2, 3]), 1, Float32Array.from([0, 1])), /the image has 3 bytes, expected 1 x 2/);
});
