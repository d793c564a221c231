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

test('a model built and counted on the meta device has the real model\'s parameters and MACs', async () => {
  const { createModel } = await import('../../src/models/index.js');
  const { withDevice } = await import('../../src/engine/index.js');
  // one per family: plain convs, depthwise + SE + SiLU, ReLU6 + hardtanh, inception's concat and pooling
  for (const [name, shape] of [['resnet20', [1, 3, 32, 32]], ['efficientnet_b0', [1, 3, 64, 64]], ['mobilenet_v2', [1, 3, 64, 64]], ['googlenet', [1, 3, 64, 64]]] as const) {
    const real = createModel(name);
    const want = { params: real.numParameters(), macs: countMacs(real, [...shape]).total };
    real.dispose();
    const got = withDevice('meta', () => {
      const m = createModel(name);
      assert.equal(m.parameters()[0].device, 'meta');
      return { params: m.numParameters(), macs: countMacs(m, [...shape]).total };
    });
    assert.deepEqual(got, want, name);
  }
});

test('shape-only convolution refuses what a real one would: channels that do not fit, a kernel larger than the input', async () => {
  const { withDevice } = await import('../../src/engine/index.js');
  withDevice('meta', () => {
    const conv = new Conv2d(3, 4, 5);
    assert.throws(() => countMacs(conv, [1, 2, 8, 8]), /conv2d: input \[1, 2, 8, 8\] does not fit weight \[4, 3, 5, 5\] with groups=1/);
    assert.throws(() => countMacs(conv, [1, 3, 4, 4]), /conv2d: input \[1, 3, 4, 4\] is smaller than the kernel \[5, 5\]/);
  });
});

test('recurrent layers count every weight matrix once per step; attention counts its projections and both products', async () => {
  const { LSTM, GRU, TransformerEncoderLayer } = await import('../../src/nn/index.js');
  const lstm = new LSTM(6, 5, { numLayers: 2, bidirectional: true, batchFirst: true });
  // per step: layer 0 4*5*(6+5) per direction, layer 1 4*5*(10+5) per direction; 3 sequences of 7 steps
  assert.equal(countMacs(lstm, [3, 7, 6]).total, 3 * 7 * 2 * (4 * 5 * 11 + 4 * 5 * 15));
  lstm.dispose();
  const gru = new GRU(4, 3);
  assert.equal(countMacs(gru, [7, 2, 4]).total, 7 * 2 * 3 * 3 * (4 + 3));
  gru.dispose();
  const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, dropout: 0 });
  // attention: in-projection 3*L*E*E, QK^T and AV L*L*E each, out_proj (a Linear) L*E*E;
  // feed-forward 2*L*E*16; 2 sequences of 5
  assert.equal(countMacs(layer, [2, 5, 8]).total, 2 * (3 * 5 * 64 + 2 * 5 * 5 * 8 + 5 * 64 + 2 * 5 * 8 * 16));
  layer.dispose();
});
