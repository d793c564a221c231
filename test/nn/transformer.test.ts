// MultiheadAttention, TransformerEncoderLayer and TransformerEncoder against torch.nn: names,
// counts, outputs and gradients, post-norm and pre-norm, relu and gelu, batch-first and not,
// key-padding and attention masks, separate k/v dims, and attention + residual dropout in training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { full, manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import {
  LayerNorm, MultiheadAttention, TransformerEncoder, TransformerEncoderLayer, generateSquareSubsequentMask,
} from '../../src/nn/index.js';
import { LayerParity } from '../helpers/layer_parity.js';

const suite = new LayerParity();
const names: string[] = [];

/** [N, S] bool, true at the padded tail: sequence i keeps lengths[i] steps. */
const paddingMask = (lengths: number[], s: number): Tensor =>
  tensor(lengths.map((l) => Array.from({ length: s }, (_, j) => j >= l)));

const encRun = (m: TransformerEncoder, i: Record<string, Tensor>): Tensor[] =>
  [m.call(i.x, { srcKeyPaddingMask: i.kpm, mask: i.mask })];

function encoder(o: { d: number; nhead: number; ff: number; layers: number; act: 'relu' | 'gelu'; normFirst: boolean; batchFirst: boolean; finalNorm: boolean; dropout?: number }): TransformerEncoder {
  const layer = new TransformerEncoderLayer(o.d, o.nhead, {
    dimFeedforward: o.ff, dropout: o.dropout ?? 0.1, activation: o.act, normFirst: o.normFirst, batchFirst: o.batchFirst,
  });
  return new TransformerEncoder(layer, o.layers, { norm: o.finalNorm ? new LayerNorm(o.d) : null });
}

before(async () => {
  manualSeed(7);
  // post-norm, relu, batch-first, padding mask
  suite.add({
    name: 'encoder-postnorm-relu-bf-kpm',
    spec: {
      kind: 'TransformerEncoder', num_layers: 2,
      kwargs: { d_model: 16, nhead: 4, dim_feedforward: 32, activation: 'relu', batch_first: true, norm_first: false },
    },
    build: () => encoder({ d: 16, nhead: 4, ff: 32, layers: 2, act: 'relu', normFirst: false, batchFirst: true, finalNorm: false }),
    inputs: { x: randn([3, 7, 16]), kpm: paddingMask([7, 4, 2], 7) },
    run: encRun,
  });
  // pre-norm, gelu, sequence-first, final norm, padding mask + causal mask
  suite.add({
    name: 'encoder-prenorm-gelu-sf-norm-kpm-causal',
    spec: {
      kind: 'TransformerEncoder', num_layers: 3, final_norm: true,
      kwargs: { d_model: 12, nhead: 3, dim_feedforward: 24, activation: 'gelu', norm_first: true, layer_norm_eps: 1e-6 },
    },
    build: () => {
      const layer = new TransformerEncoderLayer(12, 3, { dimFeedforward: 24, activation: 'gelu', normFirst: true, layerNormEps: 1e-6 });
      return new TransformerEncoder(layer, 3, { norm: new LayerNorm(12) });
    },
    inputs: { x: randn([6, 2, 12]), kpm: paddingMask([6, 3], 6), mask: generateSquareSubsequentMask(6) },
    run: encRun,
  });
  // pre-norm in training: attention, feed-forward and residual dropout in PyTorch's order
  suite.add({
    name: 'encoder-prenorm-train-dropout',
    spec: {
      kind: 'TransformerEncoder', num_layers: 2, train: true, seed: 5,
      kwargs: { d_model: 16, nhead: 2, dim_feedforward: 24, dropout: 0.3, batch_first: true, norm_first: true },
    },
    build: () => encoder({ d: 16, nhead: 2, ff: 24, layers: 2, act: 'relu', normFirst: true, batchFirst: true, finalNorm: false, dropout: 0.3 }),
    inputs: { x: randn([2, 5, 16]), kpm: paddingMask([5, 3], 5) },
    run: encRun,
  });
  // attention alone: self-attention with averaged weights; cross-attention with per-head weights
  suite.add({
    name: 'mha-self-bf-kpm-weights',
    spec: { kind: 'MultiheadAttention', kwargs: { embed_dim: 8, num_heads: 2, batch_first: true } },
    build: () => new MultiheadAttention(8, 2, { batchFirst: true }),
    inputs: { x: randn([2, 5, 8]), kpm: paddingMask([5, 2], 5) },
    run: (m, i) => { const [o, w] = m.call(i.x, i.x, i.x, { keyPaddingMask: i.kpm }); return [o, w!]; },
  });
  suite.add({
    name: 'mha-cross-kdim-vdim-perhead-attnmask',
    spec: {
      kind: 'MultiheadAttention', self: false, average: false,
      kwargs: { embed_dim: 8, num_heads: 4, kdim: 6, vdim: 6 },
    },
    build: () => new MultiheadAttention(8, 4, { kdim: 6, vdim: 6 }),
    inputs: { x: randn([4, 3, 8]), kv: randn([5, 3, 6]), attn_mask: randn([4, 5]) },
    run: (m, i) => { const [o, w] = m.call(i.x, i.kv, i.kv, { attnMask: i.attn_mask, averageAttnWeights: false }); return [o, w!]; },
  });
  suite.add({
    name: 'mha-cross-packed-nobias-noweights',
    spec: { kind: 'MultiheadAttention', self: false, need_weights: false, kwargs: { embed_dim: 8, num_heads: 2, bias: false } },
    build: () => new MultiheadAttention(8, 2, { bias: false }),
    inputs: { x: randn([4, 3, 8]), kv: randn([5, 3, 8]) },
    run: (m, i) => [m.call(i.x, i.kv, i.kv, { needWeights: false })[0]],
  });
  names.push('encoder-postnorm-relu-bf-kpm', 'encoder-prenorm-gelu-sf-norm-kpm-causal', 'encoder-prenorm-train-dropout',
    'mha-self-bf-kpm-weights', 'mha-cross-kdim-vdim-perhead-attnmask', 'mha-cross-packed-nobias-noweights');
  await suite.run();
});

after(() => suite.dispose());

test('attention and encoder layers match torch.nn (names, counts, outputs, gradients)', () => {
  for (const name of names) {
    const r = suite.check(name);
    console.log(`# ${name}: max |out err| ${r.maxOutErr.toExponential(2)}, max |grad err| ${r.maxGradErr.toExponential(2)}`);
  }
});

test('TransformerEncoder: PyTorch names; layers start as copies of the given layer', () => {
  const enc = encoder({ d: 8, nhead: 2, ff: 16, layers: 2, act: 'relu', normFirst: false, batchFirst: true, finalNorm: true });
  const keys = [...enc.stateDict().keys()];
  assert.deepEqual(keys.slice(0, 12), [
    'layers.0.self_attn.in_proj_weight', 'layers.0.self_attn.in_proj_bias', 'layers.0.self_attn.out_proj.weight',
    'layers.0.self_attn.out_proj.bias', 'layers.0.linear1.weight', 'layers.0.linear1.bias', 'layers.0.linear2.weight',
    'layers.0.linear2.bias', 'layers.0.norm1.weight', 'layers.0.norm1.bias', 'layers.0.norm2.weight', 'layers.0.norm2.bias',
  ]);
  assert.deepEqual(keys.slice(-2), ['norm.weight', 'norm.bias']);
  const sd = enc.stateDict();
  assert.ok(sd.get('layers.0.linear1.weight')!.equal(sd.get('layers.1.linear1.weight')!));
  assert.notEqual(sd.get('layers.0.linear1.weight'), sd.get('layers.1.linear1.weight'));
  enc.dispose();
});

test('a padded key changes nothing at the valid positions', () => {
  const enc = encoder({ d: 8, nhead: 2, ff: 16, layers: 2, act: 'gelu', normFirst: true, batchFirst: true, finalNorm: true }).eval();
  tidy(() => noGrad(() => {
    const x = randn([1, 5, 8]);
    const kpm = paddingMask([3], 5);
    const a = enc.call(x, { srcKeyPaddingMask: kpm }).narrow(1, 0, 3);
    const b = enc.call(x.narrow(1, 0, 3)).narrow(1, 0, 3);
    assert.ok(a.allclose(b, 1e-5, 1e-6));
    assert.throws(() => enc.call(x, { srcKeyPaddingMask: full([1, 4], 0, { dtype: 'bool' }) }), /keyPaddingMask must be \[1, 5\]/);
  }));
  assert.throws(() => new MultiheadAttention(10, 3), /divisible by numHeads/);
  enc.dispose();
});
