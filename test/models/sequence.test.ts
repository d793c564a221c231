// The ready sequence classifiers against their PyTorch definitions (test/helpers/ref_seq.py):
// names, order, counts and outputs for feature and token input, padding, both poolings, eval and
// training (dropout masks from the same seed); and a short run on Fashion-MNIST rows as sequences.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { F, getNumThreads, manualSeed, noGrad, setNumThreads, tensor, tidy, zerosLike, type Tensor } from '../../src/engine/index.js';
import { Module } from '../../src/nn/index.js';
import { FASHION_MNIST_DIR, readMnistSplit } from '../../src/io/idx.js';
import { createModel, listModels, modelEntry } from '../../src/models/index.js';
import {
  RecurrentClassifier, TransformerClassifier, gruClassifier, lstmClassifier, transformerClassifier,
} from '../../src/models/sequence.js';
import { checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';

type Built = RecurrentClassifier | TransformerClassifier;
interface Case { oracle: OracleCase; build: () => Built; vocab?: number; pad?: number }

const rec = 'ref_seq.recurrent_classifier';
const tra = 'ref_seq.transformer_classifier';
const CASES: Case[] = [
  {
    oracle: { id: 'lstm-2l-bi-last-image4d', name: 'lstm', builder: rec, input: [3, 1, 28, 28],
      kwargs: { cell: 'lstm', hidden_size: 32, num_layers: 2, bidirectional: true } },
    build: () => lstmClassifier({ hiddenSize: 32, numLayers: 2, bidirectional: true }),
  },
  {
    oracle: { id: 'gru-mean-features', name: 'gru', builder: rec, input: [2, 9, 5],
      kwargs: { cell: 'gru', in_features: 5, hidden_size: 12, pooling: 'mean', num_classes: 4 } },
    build: () => gruClassifier({ inFeatures: 5, hiddenSize: 12, pooling: 'mean', numClasses: 4 }),
  },
  {
    oracle: { id: 'lstm-tokens-padded-bi', name: 'lstm', builder: rec, input: [4, 9],
      kwargs: { cell: 'lstm', vocab_size: 50, padding_idx: 0, embed_dim: 16, hidden_size: 24, bidirectional: true, token_input: true } },
    build: () => lstmClassifier({ vocabSize: 50, paddingIdx: 0, embedDim: 16, hiddenSize: 24, bidirectional: true }),
    vocab: 50, pad: 0,
  },
  {
    oracle: { id: 'lstm-train-dropout', name: 'lstm', builder: rec, input: [4, 6, 28], train: true, seed: 11,
      kwargs: { cell: 'lstm', hidden_size: 16, num_layers: 2, dropout: 0.3, drop_rate: 0.5 } },
    build: () => lstmClassifier({ hiddenSize: 16, numLayers: 2, dropout: 0.3, dropRate: 0.5 }),
  },
  {
    oracle: { id: 'transformer-prenorm-features', name: 'transformer', builder: tra, input: [3, 28, 28],
      kwargs: { d_model: 32, nhead: 4, num_layers: 2 } },
    build: () => transformerClassifier({ dModel: 32, nhead: 4, numLayers: 2 }),
  },
  {
    oracle: { id: 'transformer-postnorm-tokens-padded-last', name: 'transformer', builder: tra, input: [4, 10],
      kwargs: { vocab_size: 30, padding_idx: 1, d_model: 16, nhead: 2, num_layers: 2, norm_first: false, activation: 'relu',
        pooling: 'last', max_len: 16, num_classes: 3, token_input: true } },
    build: () => transformerClassifier({ vocabSize: 30, paddingIdx: 1, dModel: 16, nhead: 2, numLayers: 2, normFirst: false,
      activation: 'relu', pooling: 'last', maxLen: 16, numClasses: 3 }),
    vocab: 30, pad: 1,
  },
  {
    oracle: { id: 'transformer-train-dropout', name: 'transformer', builder: tra, input: [2, 7, 28], train: true, seed: 4,
      kwargs: { d_model: 16, nhead: 2, num_layers: 2, dropout: 0.2, drop_rate: 0.3 } },
    build: () => transformerClassifier({ dModel: 16, nhead: 2, numLayers: 2, dropout: 0.2, dropRate: 0.3 }),
  },
];

/** ref_seq.token_ids: randn -> ids in [0, vocab), the tails of rows 1, 3, ... padded. */
function tokenIds(x: Tensor, vocab: number, pad: number): Tensor {
  const [n, t] = x.shape;
  const v = x.toTypedArray() as Float32Array;
  const ids = Array.from(v, (f) => Math.trunc(Math.fround(Math.abs(f) * 1000)) % vocab).map((id) => (id === pad ? (pad + 1) % vocab : id));
  for (let i = 1; i < n; i += 2) for (let j = t - (i + 1); j < t; j++) ids[i * t + j] = pad;
  return tensor(Int32Array.from(ids), { shape: [n, t] }).long();
}

/** Feeds a classifier token ids made from the oracle's randn input; state dict is the classifier's own. */
class TokenInput extends Module<[Tensor], Tensor> {
  constructor(readonly model: Built, readonly vocab: number, readonly pad: number) {
    super();
  }
  override stateDict(): Map<string, Tensor> {
    return this.model.stateDict();
  }
  forward(x: Tensor): Tensor {
    const ids = tokenIds(x, this.vocab, this.pad);
    const y = this.model.call(ids);
    ids.dispose();
    return y;
  }
}

let refs: Map<string, OracleResult>;
before(() => {
  refs = runOracle(CASES.map((c) => c.oracle));
});
after(() => {
  for (const r of refs.values()) disposeResult(r);
});

test('sequence classifiers match their PyTorch definitions (names, order, counts, outputs)', () => {
  for (const c of CASES) {
    const inner = c.build();
    const m = c.vocab !== undefined ? new TokenInput(inner, c.vocab, c.pad!) : inner;
    try {
      const [err] = checkParity(m, refs.get(c.oracle.id)!, c.oracle.id, 1e-4, { train: c.oracle.train, seed: c.oracle.seed });
      console.log(`# ${c.oracle.id}: max |err| / max |ref| ${err.toExponential(2)}`);
    } finally {
      inner.dispose();
    }
  }
});

test('registered as family "sequence"; createModel with Fashion-MNIST defaults', () => {
  assert.deepEqual(listModels('sequence').map((e) => e.name).sort(), ['gru_classifier', 'lstm_classifier', 'transformer_classifier']);
  assert.deepEqual(modelEntry('lstm_classifier').config.inputSize, [1, 28, 28]);
  for (const name of ['lstm_classifier', 'gru_classifier', 'transformer_classifier']) {
    const m = createModel(name, { hiddenSize: 16, dModel: 16, nhead: 2 });
    try {
      m.eval();
      tidy(() => noGrad(() => {
        const y = m.call(tensor(new Float32Array(2 * 28 * 28), { shape: [2, 1, 28, 28] }));
        assert.deepEqual((y as Tensor).shape, [2, 10]);
        assert.throws(() => m.call(tensor(new Float32Array(2 * 28 * 27), { shape: [2, 28, 27] })), /expected features \[N, T, 28\]/);
      }));
    } finally {
      m.dispose();
    }
  }
  // a trainer passes the dataset's channel count: gray images are rows of 28 features, not 1
  const gray = createModel('gru_classifier', { hiddenSize: 8, inChannels: 1 });
  try {
    tidy(() => noGrad(() => assert.deepEqual((gray.call(tensor(new Float32Array(2 * 28 * 28), { shape: [2, 1, 28, 28] })) as Tensor).shape, [2, 10])));
  } finally {
    gray.dispose();
  }
  assert.throws(() => createModel('lstm_classifier', { inChannels: 3 }), /needs gray images \(inChannels 1\), got inChannels 3/);
  assert.throws(() => lstmClassifier({ paddingIdx: 0 }), /paddingIdx needs token input/);
  const t = transformerClassifier({ maxLen: 8, dModel: 8, nhead: 2 });
  assert.throws(() => tidy(() => t.call(tensor(new Float32Array(9 * 28), { shape: [1, 9, 28] }))), /longer than maxLen 8/);
  t.dispose();
});

/** Adam on a module's parameters (the library's optimizers are tested elsewhere). */
function adam(params: Tensor[], lr: number): () => void {
  const m = params.map((p) => zerosLike(p).keep());
  const v = params.map((p) => zerosLike(p).keep());
  let step = 0;
  return () => noGrad(() => tidy(() => {
    step++;
    params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      m[i].mul_(0.9).add_(g, 0.1);
      v[i].mul_(0.999).addcmul_(g, g, 0.001);
      const mh = m[i].div(1 - 0.9 ** step);
      const vh = v[i].div(1 - 0.999 ** step);
      p.sub_(mh.div(vh.sqrt().add(1e-8)).mul(lr));
    });
  }));
}

test('lstm_classifier learns Fashion-MNIST rows as sequences (28 steps of 28 pixels)', () => {
  // small sequential kernels: one thread is faster, and much faster on a busy machine
  const threads = getNumThreads();
  setNumThreads(1);
  try {
    trainRows();
  } finally {
    setNumThreads(threads);
  }
});

function trainRows(): void {
  const data = readMnistSplit(FASHION_MNIST_DIR, 'test');
  const take = (start: number, n: number): [Tensor, Tensor] => {
    const px = data.images.subarray(start * 784, (start + n) * 784);
    const x = tensor(px, { shape: [n, 1, 28, 28] }).float().div(255);
    return [x, tensor(Int32Array.from(data.labels.subarray(start, start + n)), { shape: [n] }).long()];
  };
  manualSeed(0);
  const m = createModel('lstm_classifier', { hiddenSize: 32 });
  const step = adam(m.parameters(), 1e-2);
  const [xv, yv] = take(8000, 500);
  const accuracy = (): number => tidy(() => noGrad(() => {
    m.eval();
    const acc = (m.call(xv) as Tensor).argmax(1).eq(yv).float().mean().item();
    m.train();
    return acc;
  }));
  const before = accuracy();
  for (let i = 0; i < 60; i++) {
    tidy(() => {
      const [x, y] = take(i * 64, 64);
      m.zeroGrad();
      F.crossEntropy(m.call(x) as Tensor, y).backward();
      step();
    });
  }
  const after = accuracy();
  console.log(`# Fashion-MNIST rows, lstm_classifier: accuracy ${before.toFixed(3)} -> ${after.toFixed(3)} after 60 steps of 64`);
  assert.ok(after > 0.5 && after > before + 0.3, `accuracy ${before} -> ${after}`);
  for (const t of [xv, yv]) t.dispose();
  m.dispose();
}
