// countMacs: conv = output elements x (in / groups) x kernel area, linear = outputs x in_features,
// measured on a real forward pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { countMacs } from '../../src/analyze/macs.js';

test('countMacs sums convolutions (grouped, strided) and linears, restores the mode', () => {
  const model = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1 }), // 8x16x16 out, 3*9 each
    new ReLU(),
    new Conv2d(8, 8, 3, { stride: 2, padding: 1, groups: 8 }), // 8x8x8 out, 1*9 each
    new Flatten(),
    new Linear(512, 10),
  );
  try {
    model.train();
    const r = countMacs(model, [2, 3, 16, 16]);
    const expected = 2 * (8 * 16 * 16 * 27 + 8 * 8 * 8 * 9 + 10 * 512);
    assert.equal(r.total, expected);
    assert.deepEqual(r.layers.map((l) => l.name), ['0', '2', '4']);
    assert.deepEqual(r.layers[1].outputShape, [2, 8, 8, 8]);
    assert.ok(model.training, 'training mode restored');
    assert.throws(() => countMacs(model, [2, 3, 0, 16]), /countMacs: inputShape must be positive integers/);
  } finally {
    model.dispose();
  }
});
