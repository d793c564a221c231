// evaluate(): the metrics it reports and its test-time augmentation (mirror, diagonal shifts),
// against the same views computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, arange, manualSeed, noGrad, tidy, type Tensor } from '../../src/engine/index.js';
import { DataLoader, synthetic } from '../../src/data/index.js';
import { evaluate, translate } from '../../src/train/evaluate.js';
import { TinyCnn } from './tiny_model.js';

test('translate shifts an image by (dy, dx) with reflect padding', () => {
  tidy(() => {
    const x = arange(0, 16).float().reshape([1, 1, 4, 4]);
    // +1, +1: row i, column j come from i-1, j-1; row and column -1 reflect to 1
    assert.deepEqual(translate(x, 1, 1).flatten().toArray(), [5, 4, 5, 6, 1, 0, 1, 2, 5, 4, 5, 6, 9, 8, 9, 10]);
    // -1, -1: from i+1, j+1; row and column 4 reflect to 2
    assert.deepEqual(translate(x, -1, -1).flatten().toArray(), [5, 6, 7, 6, 9, 10, 11, 10, 13, 14, 15, 14, 9, 10, 11, 10]);
    assert.deepEqual(translate(x, 0, 2).flatten().toArray(), [2, 1, 0, 1, 6, 5, 4, 5, 10, 9, 8, 9, 14, 13, 12, 13]);
    assert.ok(translate(x, 0, 0).equal(x));
    assert.throws(() => translate(x, 4, 0), /translate: a shift of 4 pixels needs images larger than 4x4, found 4x4/);
  });
});

test('evaluate averages the mirrored and shifted views as asked (weights 1/2 centre, 1/4 each shift)', async () => {
  manualSeed(7);
  const ds = synthetic({ count: 40, shape: [1, 12, 12], numClasses: 4, seed: 3 });
  const model = new TinyCnn({ inChannels: 1, numClasses: 4 }).eval();
  const loader = new DataLoader(ds, { batchSize: 16, shuffle: false, seed: 0, transform: [{ name: 'normalize', mean: [0.5], std: [0.25] }], training: false });
  const x = tidy(() => ds.images.float().div(255).sub(0.5).div(0.25).keep());
  const y = ds.labels;
  const lossOf = (logits: Tensor): number => F.crossEntropy(logits, y).item();
  const expect = tidy(() => noGrad(() => {
    const f = (v: Tensor): Tensor => model.call(v);
    const mirror = (v: Tensor): Tensor => f(v).add(f(v.flip([3]))).div(2);
    const plain = lossOf(f(x));
    const flip = lossOf(mirror(x));
    const shifted = lossOf(mirror(x).mul(0.5).add(mirror(translate(x, 2, 2)).add(mirror(translate(x, -2, -2))).mul(0.25)));
    return { plain, flip, shifted };
  }));
  for (const [o, want] of [[{}, expect.plain], [{ flip: true }, expect.flip], [{ flip: true, translate: 2 }, expect.shifted]] as const) {
    const r = await evaluate(model, loader, { numClasses: 4, ...o });
    assert.equal(r.count, 40);
    assert.ok(Math.abs(r.loss - want) < 1e-5, `${JSON.stringify(o)}: loss ${r.loss} vs ${want} by hand`);
  }
  assert.notEqual(expect.plain, expect.flip);
  assert.notEqual(expect.flip, expect.shifted);
  x.dispose();
  model.dispose();
  ds.dispose();
});

test('evaluate counts top-1 and top-5 and fills the confusion matrix', async () => {
  const ds = synthetic({ count: 30, shape: [1, 8, 8], numClasses: 6, seed: 1 });
  const model = new TinyCnn({ inChannels: 1, numClasses: 6 });
  const loader = new DataLoader(ds, { batchSize: 7, shuffle: false, seed: 0, transform: [{ name: 'normalize', mean: [0.5], std: [0.25] }], training: false });
  const r = await evaluate(model, loader, { numClasses: 6, maxMisclassified: 100 });
  const diag = r.confusion.correct;
  assert.equal(r.confusion.total, 30);
  assert.ok(Math.abs(diag / 30 - r.top1) < 1e-9);
  assert.equal(r.misclassified.length, 30 - diag);
  assert.ok(r.top5 >= r.top1);
  assert.equal(model.training, true, 'the model is back in training mode');
  model.dispose();
  ds.dispose();
});
