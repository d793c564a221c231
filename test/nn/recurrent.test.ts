// RNN, LSTM and GRU against torch.nn: names and order of the flat weights, parameter counts,
// outputs, h_n / c_n, and gradients of input and weights, for stacked bidirectional batch-first
// layers, given and default hidden states, unbatched input, no bias, and inter-layer dropout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { GRU, LSTM, RNN } from '../../src/nn/index.js';
import { LayerParity } from '../helpers/layer_parity.js';

const suite = new LayerParity();
const names: string[] = [];

const lstmRun = (m: LSTM, i: Record<string, Tensor>): Tensor[] => {
  const [out, [h, c]] = m.call(i.x, i.h0 ? [i.h0, i.c0] : undefined);
  return [out, h, c];
};
const simpleRun = (m: GRU | RNN, i: Record<string, Tensor>): Tensor[] => {
  const [out, h] = m.call(i.x, i.h0);
  return [out, h];
};

before(async () => {
  manualSeed(42);
  // 2 layers, bidirectional, batch-first, explicit (h0, c0): N=3, T=6, F=5, H=7
  suite.add({
    name: 'lstm-2l-bi-bf-hx',
    spec: { kind: 'LSTM', kwargs: { input_size: 5, hidden_size: 7, num_layers: 2, bidirectional: true, batch_first: true } },
    build: () => new LSTM(5, 7, { numLayers: 2, bidirectional: true, batchFirst: true }),
    inputs: { x: randn([3, 6, 5]), h0: randn([4, 3, 7]), c0: randn([4, 3, 7]) },
    run: lstmRun,
  });
  suite.add({
    name: 'gru-2l-bi-bf',
    spec: { kind: 'GRU', kwargs: { input_size: 5, hidden_size: 7, num_layers: 2, bidirectional: true, batch_first: true } },
    build: () => new GRU(5, 7, { numLayers: 2, bidirectional: true, batchFirst: true }),
    inputs: { x: randn([3, 6, 5]) },
    run: simpleRun,
  });
  suite.add({
    name: 'rnn-tanh-3l-bi-bf-h0',
    spec: { kind: 'RNN', kwargs: { input_size: 4, hidden_size: 6, num_layers: 3, bidirectional: true, batch_first: true } },
    build: () => new RNN(4, 6, { numLayers: 3, bidirectional: true, batchFirst: true }),
    inputs: { x: randn([2, 5, 4]), h0: randn([6, 2, 6]) },
    run: simpleRun,
  });
  suite.add({
    name: 'rnn-relu-seq-first-nobias',
    spec: { kind: 'RNN', kwargs: { input_size: 4, hidden_size: 6, num_layers: 2, nonlinearity: 'relu', bias: false } },
    build: () => new RNN(4, 6, { numLayers: 2, nonlinearity: 'relu', bias: false }),
    inputs: { x: randn([5, 2, 4]) },
    run: simpleRun,
  });
  suite.add({
    name: 'gru-unbatched',
    spec: { kind: 'GRU', kwargs: { input_size: 3, hidden_size: 4, num_layers: 2 } },
    build: () => new GRU(3, 4, { numLayers: 2 }),
    inputs: { x: randn([5, 3]), h0: randn([2, 4]) },
    run: simpleRun,
  });
  // training mode: dropout between layers draws from the generator both sides seed alike
  suite.add({
    name: 'lstm-3l-dropout-train',
    spec: { kind: 'LSTM', kwargs: { input_size: 5, hidden_size: 8, num_layers: 3, dropout: 0.4, batch_first: true }, train: true, seed: 3 },
    build: () => new LSTM(5, 8, { numLayers: 3, dropout: 0.4, batchFirst: true }),
    inputs: { x: randn([4, 6, 5]) },
    run: lstmRun,
  });
  names.push('lstm-2l-bi-bf-hx', 'gru-2l-bi-bf', 'rnn-tanh-3l-bi-bf-h0', 'rnn-relu-seq-first-nobias', 'gru-unbatched', 'lstm-3l-dropout-train');
  await suite.run();
});

after(() => suite.dispose());

test('recurrent layers match torch.nn (names, counts, outputs, gradients)', () => {
  for (const name of names) {
    const r = suite.check(name);
    console.log(`# ${name}: max |out err| ${r.maxOutErr.toExponential(2)}, max |grad err| ${r.maxGradErr.toExponential(2)}`);
  }
});

test('LSTM names, shapes and init follow PyTorch', () => {
  const m = new LSTM(10, 20, { numLayers: 2, bidirectional: true });
  const keys = [...m.stateDict().keys()];
  assert.deepEqual(keys.slice(0, 8), [
    'weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0',
    'weight_ih_l0_reverse', 'weight_hh_l0_reverse', 'bias_ih_l0_reverse', 'bias_hh_l0_reverse',
  ]);
  assert.equal(keys.length, 16);
  const sd = m.stateDict();
  assert.deepEqual(sd.get('weight_ih_l0')!.shape, [80, 10]);
  assert.deepEqual(sd.get('weight_ih_l1')!.shape, [80, 40]);
  const bound = 1 / Math.sqrt(20);
  for (const p of m.parameters()) {
    const [lo, hi] = tidy(() => [p.min().item(), p.max().item()]);
    assert.ok(lo >= -bound && hi <= bound, `init within ±1/sqrt(hidden): [${lo}, ${hi}]`);
  }
  m.dispose();
});

test('recurrent layers: default hidden state is zeros, errors name the problem', () => {
  const m = new GRU(3, 4, { batchFirst: true });
  tidy(() => noGrad(() => {
    const x = randn([2, 5, 3]);
    const [a] = m.call(x);
    const [b] = m.call(x, randn([1, 2, 4]).mul(0));
    assert.ok(a.equal(b));
    assert.throws(() => m.call(randn([2, 5, 4])), /inputSize 3/);
    assert.throws(() => m.call(x, randn([2, 2, 4])), /h_0 of shape \[1, 2, 4\]/);
  }));
  assert.throws(() => new LSTM(3, 0), /hiddenSize must be a positive integer/);
  m.dispose();
});

test('LSTM trains: the loss falls on a toy task', () => {
  manualSeed(0);
  const m = new LSTM(2, 8, { batchFirst: true });
  const x = randn([16, 5, 2]);
  // target: the sum of the first feature over time, read from the last hidden state's mean
  const y = tidy(() => x.select(2, 0).sum(1));
  const lr = 0.05;
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    tidy(() => {
      m.zeroGrad();
      const [, [h]] = m.call(x);
      const pred = h.select(0, 0).sum(1);
      const loss = pred.sub(y).pow(2).mean();
      loss.backward();
      noGrad(() => { for (const p of m.parameters()) p.sub_(p.grad!.mul(lr)); });
      losses.push(loss.item());
    });
  }
  assert.ok(losses[losses.length - 1] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[losses.length - 1]}`);
  for (const t of [m, x, y]) t.dispose();
});
