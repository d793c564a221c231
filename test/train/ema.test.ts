// ModelEma: the average after k updates against a hand computation (float buffers averaged,
// integer ones copied), the decay warmup, swapping the average in and out, checkpoints.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { Tensor, manualSeed, noGrad, randn, tidy } from '../../src/engine/index.js';
import { BatchNorm1d, Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { ModelEma } from '../../src/train/ema.js';
import { assertClose, assertEqualTensor } from '../helpers/oracle.js';

const makeModel = (): Sequential => new Sequential(new Linear(3, 4), new BatchNorm1d(4), new ReLU(), new Linear(4, 2));

const flat = (t: Tensor): number[] => Array.from(t.to('float64').toTypedArray() as Float64Array);
const snapshot = (m: Sequential): Map<string, number[]> => new Map([...m.stateDict()].map(([k, t]) => [k, tidy(() => flat(t))]));

/** One training-like change: the weights move and a forward pass updates the BN statistics. */
function perturb(m: Sequential, k: number): void {
  tidy(() => {
    noGrad(() => { for (const p of m.parameters()) p.add_(randn(p.shape).mul(0.1 * (k + 1))); });
    m.train();
    noGrad(() => m.call(randn([6, 3])));
  });
}

function assertMatches(ema: ModelEma, expected: Map<string, number[]>, rtol: number, what: string): void {
  for (const [k, want] of expected) {
    const got = tidy(() => flat(ema.tensors.get(k)!));
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= rtol * Math.abs(w) + 1e-7, `${what}: ${k}[${i}] = ${got[i]}, expected ${w}`));
  }
}

describe('ModelEma', () => {
  test('after k updates: decay * ema + (1 - decay) * value for floats, integers copied', () => {
    manualSeed(3);
    const m = makeModel();
    const ema = new ModelEma(m, { decay: 0.9 });
    let expected = snapshot(m);
    for (let k = 0; k < 6; k++) {
      perturb(m, k);
      ema.update(m);
      const now = snapshot(m);
      expected = new Map([...expected].map(([key, e]) => [key, key.endsWith('num_batches_tracked') ? now.get(key)! : e.map((v, i) => 0.9 * v + 0.1 * now.get(key)![i])]));
    }
    assertMatches(ema, expected, 1e-6, 'decay 0.9');
    assert.equal(ema.tensors.get('1.num_batches_tracked')!.item(), 6);
    assert.equal(ema.tensors.get('1.num_batches_tracked')!.dtype, 'int64');
    assert.equal(ema.updates, 6);
    // the average is a copy: the model moving does not move it
    const before = snapshot(m);
    perturb(m, 9);
    assert.notDeepEqual(snapshot(m).get('0.weight'), before.get('0.weight'));
    assertMatches(ema, expected, 1e-6, 'unchanged by the model');
    ema.dispose();
    m.dispose();
  });

  test('decay warmup and updateAfterStep follow timm\'s get_decay', () => {
    const m = makeModel();
    const ema = new ModelEma(m, { decay: 0.999, useWarmup: true, warmupPower: 3 / 4, minDecay: 0.1, updateAfterStep: 2 });
    assert.equal(ema.getDecay(), 0.999);
    assert.equal(ema.getDecay(1), 0);
    assert.equal(ema.getDecay(3), 0);
    assert.equal(ema.getDecay(4), Math.max(0.1, 1 - (1 + 1) ** -0.75));
    assert.equal(ema.getDecay(100), 1 - (1 + 97) ** -0.75);
    assert.equal(ema.getDecay(1e9), 0.999);
    const plain = new ModelEma(m, { decay: 0.99 });
    assert.equal(plain.getDecay(1), 0);
    assert.equal(plain.getDecay(2), 0.99);
    // a step with decay 0 copies the model exactly
    perturb(m, 0);
    ema.update(m, 1);
    for (const [k, t] of m.stateDict()) assertEqualTensor(ema.tensors.get(k)!, t, `copied ${k}`);
    ema.dispose();
    plain.dispose();
    m.dispose();
  });

  test('excludeBuffers averages the parameters and copies the buffers', () => {
    manualSeed(4);
    const m = makeModel();
    const ema = new ModelEma(m, { decay: 0.5, excludeBuffers: true });
    const start = snapshot(m);
    perturb(m, 1);
    ema.update(m);
    const now = snapshot(m);
    for (const k of ['1.running_mean', '1.running_var']) assert.deepEqual(tidy(() => flat(ema.tensors.get(k)!)), now.get(k));
    assertMatches(ema, new Map([['0.weight', start.get('0.weight')!.map((v, i) => 0.5 * v + 0.5 * now.get('0.weight')![i])]]), 1e-6, 'parameters averaged');
    ema.dispose();
    m.dispose();
  });

  test('swap in and out leaves the model exactly as it was, tensor objects included', async () => {
    manualSeed(5);
    const m = makeModel();
    const ema = new ModelEma(m, { decay: 0.8 });
    for (let k = 0; k < 3; k++) {
      perturb(m, k);
      ema.update(m);
    }
    const objects = [...m.stateDict().values()];
    const original = new Map([...m.stateDict()].map(([k, t]) => [k, noGrad(() => t.clone())]));
    const average = new Map([...ema.tensors].map(([k, t]) => [k, noGrad(() => t.clone())]));
    const x = randn([5, 3]);
    const expectedOut = tidy(() => {
      const other = makeModel();
      other.loadStateDict(average);
      other.eval();
      const out = noGrad(() => other.call(x));
      other.dispose();
      return out;
    });
    m.eval();
    const out = ema.withWeights(m, () => {
      for (const [k, t] of m.stateDict()) assertEqualTensor(t, average.get(k)!, `swapped in: ${k}`);
      return noGrad(() => m.call(x));
    });
    assertClose(out, expectedOut, { rtol: 0, atol: 0 }, 'the model evaluates the average');
    for (const [k, t] of m.stateDict()) assertEqualTensor(t, original.get(k)!, `swapped back: ${k}`);
    for (const [k, t] of ema.tensors) assertEqualTensor(t, average.get(k)!, `average kept: ${k}`);
    assert.deepEqual([...m.stateDict().values()], objects);
    // async evaluation, and a failing one, swap back too
    const r = await ema.withWeights(m, async () => {
      await new Promise((res) => setTimeout(res, 1));
      return tidy(() => flat(m.stateDict().get('0.weight')!));
    });
    assert.deepEqual(r, tidy(() => flat(average.get('0.weight')!)));
    assert.throws(() => ema.withWeights(m, () => { throw new Error('eval failed'); }), /eval failed/);
    await assert.rejects(ema.withWeights(m, async () => { throw new Error('async eval failed'); }), /async eval failed/);
    for (const [k, t] of m.stateDict()) assertEqualTensor(t, original.get(k)!, `after failures: ${k}`);
    // copyTo: a second instance for evaluation alongside
    const evalModel = makeModel();
    ema.copyTo(evalModel);
    for (const [k, t] of evalModel.stateDict()) assertEqualTensor(t, average.get(k)!, `copyTo: ${k}`);
    for (const t of [...original.values(), ...average.values(), x, out, expectedOut]) t.dispose();
    evalModel.dispose();
    ema.dispose();
    m.dispose();
  });

  test('stateDict round trip, and mismatches are named', () => {
    manualSeed(6);
    const m = makeModel();
    const ema = new ModelEma(m, { decay: 0.7 });
    perturb(m, 0);
    ema.update(m);
    ema.update(m);
    const s = ema.stateDict();
    assert.deepEqual([...s.tensors.keys()], [...m.stateDict().keys()]);
    const copy = { tensors: new Map([...s.tensors].map(([k, t]) => [k, noGrad(() => t.clone())])), meta: JSON.parse(JSON.stringify(s.meta)) };
    const fresh = new ModelEma(makeModel(), { decay: 0.7 });
    fresh.loadStateDict(copy);
    for (const [k, t] of ema.tensors) assertEqualTensor(fresh.tensors.get(k)!, t, `loaded ${k}`);
    assert.equal(fresh.updates, 2);
    const bad = { tensors: new Map([...copy.tensors, ['extra', randn([1])]]), meta: copy.meta };
    bad.tensors.delete('0.bias');
    bad.tensors.set('3.weight', randn([3, 3]));
    assert.throws(() => fresh.loadStateDict(bad), /missing '0\.bias'.*'3\.weight' has shape \[3, 3\], expected \[2, 4\].*unexpected 'extra'/);
    const small = new Sequential(new Linear(3, 4));
    assert.throws(() => ema.update(small), /ModelEma\.update: the model's state dict does not match the average's: missing 1\.weight/);
    for (const t of copy.tensors.values()) t.dispose();
    for (const x of [ema, fresh]) x.dispose();
    small.dispose();
    m.dispose();
  });
});
