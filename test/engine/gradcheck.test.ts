// Autograd against finite differences, in float64: for f = sum(op(inputs) * g) with a fixed random
// g, every element's central difference (f(x + e) - f(x - e)) / 2e against the backward gradient.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { F, Tensor, manualSeed, noGrad, randn, randperm, tensor, tidy } from '../../src/engine/index.js';

manualSeed(1);
const EPS = 1e-6;
const ATOL = 1e-6;
const RTOL = 1e-6;

const d = (...shape: number[]): Tensor => randn(shape, { dtype: 'float64' });

/**
 * Checks d f / d input for each name in wrt. f maps the inputs to any tensor; the checked scalar
 * is sum(f(inputs) * g) for a random g of f's shape, fixed for the whole check.
 */
function gradcheck(inputs: Record<string, Tensor>, wrt: string[], f: (I: Record<string, Tensor>) => Tensor): void {
  tidy(() => {
    for (const [k, t] of Object.entries(inputs)) {
      if (wrt.includes(k)) assert.equal(t.dtype, 'float64', `${k} must be float64`);
    }
    // analytic
    const leaves: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(inputs)) {
      const c = noGrad(() => t.detach().clone());
      if (wrt.includes(k)) c.requiresGrad = true;
      leaves[k] = c;
    }
    const out0 = f(leaves);
    const g = randn(out0.shape, { dtype: out0.dtype });
    const loss = out0.mul(g).sum();
    loss.backward();

    // numeric: perturb one element at a time through a view of the tensor's own memory
    const plain: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(inputs)) plain[k] = noGrad(() => t.detach().clone());
    const value = (): number => tidy(() => noGrad(() => f(plain).mul(g).sum().item()));
    for (const name of wrt) {
      const analytic = leaves[name].grad;
      assert.ok(analytic, `no gradient for ${name}`);
      const a = analytic.contiguous().toTypedArray() as Float64Array;
      const bytes = plain[name].bytesView();
      const x = new Float64Array(bytes.buffer, bytes.byteOffset, plain[name].numel());
      let maxErr = 0;
      let maxAbs = 0;
      for (let i = 0; i < x.length; i++) {
        const orig = x[i];
        x[i] = orig + EPS;
        const fp = value();
        x[i] = orig - EPS;
        const fm = value();
        x[i] = orig;
        const num = (fp - fm) / (2 * EPS);
        const err = Math.abs(num - a[i]);
        maxErr = Math.max(maxErr, err);
        maxAbs = Math.max(maxAbs, Math.abs(a[i]));
        if (err > ATOL + RTOL * Math.abs(num)) {
          assert.fail(`d/d${name}[${i}]: autograd ${a[i]}, finite differences ${num} (|diff| ${err.toExponential(2)})`);
        }
      }
      assert.ok(maxAbs > 0, `gradient of ${name} is all zeros: the check would be vacuous`);
    }
  });
}

describe('gradcheck (float64 central differences vs autograd)', () => {
  test('the checker itself catches a wrong gradient', () => {
    // x.detach() * x has derivative 2x, but autograd sees only one factor: x
    assert.throws(() => gradcheck({ x: d(5) }, ['x'], ({ x }) => x.detach().mul(x)), /finite differences/);
  });

  test('conv2d with groups, stride, padding, bias', () => {
    gradcheck({ x: d(2, 4, 5, 5), w: d(4, 2, 3, 3), b: d(4) }, ['x', 'w', 'b'],
      ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1, groups: 2 }));
  });

  test('conv2d depthwise dilated', () => {
    gradcheck({ x: d(1, 3, 6, 6), w: d(3, 1, 3, 3) }, ['x', 'w'],
      ({ x, w }) => F.conv2d(x, w, null, { padding: 2, dilation: 2, groups: 3 }));
  });

  test('batchNorm training (batch statistics)', () => {
    gradcheck({ x: d(4, 3, 2, 2), w: d(3), b: d(3) }, ['x', 'w', 'b'],
      ({ x, w, b }) => F.batchNorm(x, null, null, { weight: w, bias: b, training: true }));
  });

  test('batchNorm training with running stats', () => {
    // the running stats change on every call, but the training output does not depend on them
    const rm = d(3);
    const rv = randn([3], { dtype: 'float64' }).abs().add(0.5);
    gradcheck({ x: d(5, 3, 2), w: d(3), b: d(3), rm, rv }, ['x', 'w'],
      ({ x, w, b, rm, rv }) => F.batchNorm(x, rm, rv, { weight: w, bias: b, training: true, momentum: 0.2 }));
  });

  test('layerNorm', () => {
    gradcheck({ x: d(3, 4, 5), w: d(4, 5), b: d(4, 5) }, ['x', 'w', 'b'], ({ x, w, b }) => F.layerNorm(x, [4, 5], w, b));
  });

  test('groupNorm', () => {
    gradcheck({ x: d(2, 4, 3, 2), w: d(4), b: d(4) }, ['x', 'w', 'b'], ({ x, w, b }) => F.groupNorm(x, 2, w, b));
  });

  test('crossEntropy with label smoothing and class weights', () => {
    const t = tensor([0, 3, 1, 1, 2]);
    const w = randn([4], { dtype: 'float64' }).abs().add(0.1);
    gradcheck({ l: d(5, 4), t, w }, ['l'], ({ l, t, w }) => F.crossEntropy(l, t, { labelSmoothing: 0.1, weight: w }));
    gradcheck({ l: d(5, 4), t }, ['l'], ({ l, t }) => F.crossEntropy(l, t, { labelSmoothing: 0.2, reduction: 'none' }));
  });

  test('crossEntropy with soft targets', () => {
    gradcheck({ l: d(3, 4), p: d(3, 4) }, ['l', 'p'], ({ l, p }) => F.crossEntropy(l, p.softmax(1), { labelSmoothing: 0.1 }));
  });

  test('softmax and logSoftmax', () => {
    gradcheck({ x: d(3, 5) }, ['x'], ({ x }) => F.softmax(x, 1));
    gradcheck({ x: d(2, 3, 4) }, ['x'], ({ x }) => F.logSoftmax(x, 0));
  });

  test('matmul (batched, broadcast)', () => {
    gradcheck({ a: d(3, 4), b: d(2, 4, 5) }, ['a', 'b'], ({ a, b }) => a.matmul(b));
  });

  test('maxPool2d with padding and ceilMode', () => {
    // distinct values 0.1 apart: a perturbation of 1e-6 never changes which element is the max
    const x = randperm(72).to('float64').div(10).reshape([1, 2, 6, 6]);
    gradcheck({ x }, ['x'], ({ x }) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }));
  });

  test('avgPool2d and bilinear interpolate', () => {
    gradcheck({ x: d(1, 2, 5, 5) }, ['x'], ({ x }) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }));
    gradcheck({ x: d(1, 2, 4, 5) }, ['x'], ({ x }) => F.interpolate(x, [7, 3], { mode: 'bilinear' }));
  });

  test('lstm (weights, input and initial state)', () => {
    const H = 4;
    const ws = [d(4 * H, 3).mul(0.5), d(4 * H, H).mul(0.5), d(4 * H).mul(0.5), d(4 * H).mul(0.5)];
    const inputs = { x: d(4, 2, 3), h0: d(1, 2, H), c0: d(1, 2, H), w0: ws[0], w1: ws[1], w2: ws[2], w3: ws[3] };
    gradcheck(inputs, ['x', 'h0', 'c0', 'w0', 'w1', 'w2', 'w3'], (I) => {
      const [out, hN, cN] = F.lstm(I.x, [I.h0, I.c0], [I.w0, I.w1, I.w2, I.w3],
        { hasBiases: true, numLayers: 1, dropout: 0, training: false, bidirectional: false, batchFirst: false });
      return out.sum().add(hN.sum().mul(0.5)).add(cN.sum().mul(0.25));
    });
  });
});
