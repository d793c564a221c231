// GoogLeNet and Inception v3 against torchvision 0.14: state-dict names, order and counts, eval
// logits at reduced inputs, and training-mode outputs with the auxiliary heads (BN on batch
// statistics, dropout masks from the same seed), plus transform_input and the init.
//
// One convkit instance per architecture serves several cases (each case loads its own weights):
// building Inception v3 is the expensive part of this file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { createModel, listModels, modelEntry } from '../../src/models/index.js';
import { GoogLeNet, Inception3, googlenet, inceptionV3 } from '../../src/models/inception.js';
import { checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';

// init_weights=False: the oracle's weights are random either way, and torchvision's truncated-normal
// init of 27M weights costs seconds per build (the convkit init is checked by its statistics below)
const KW = { num_classes: 10, init_weights: false };
const CASES: OracleCase[] = [
  { id: 'googlenet-eval-64', name: 'googlenet', kwargs: KW, input: [2, 3, 64, 64] },
  { id: 'googlenet-train-64', name: 'googlenet', kwargs: KW, input: [2, 3, 64, 64], train: true, seed: 3 },
  { id: 'googlenet-noaux-transform-eval-48', name: 'googlenet', kwargs: { ...KW, aux_logits: false, transform_input: true }, input: [1, 3, 48, 48] },
  { id: 'inception_v3-eval-107', name: 'inception_v3', kwargs: KW, input: [1, 3, 107, 107] },
  { id: 'inception_v3-transform-eval-75', name: 'inception_v3', kwargs: { ...KW, transform_input: true }, input: [1, 3, 75, 75] },
  // the aux head needs the 17x17 Mixed_6e map of a 299 px input
  { id: 'inception_v3-train-299', name: 'inception_v3', kwargs: KW, input: [2, 3, 299, 299], train: true, seed: 5 },
];

let refs: Map<string, OracleResult>;
let g: GoogLeNet;
let v3: Inception3;
before(() => {
  refs = runOracle(CASES);
  g = googlenet({ numClasses: 10 });
  v3 = inceptionV3({ numClasses: 10 });
});
after(() => {
  for (const r of refs.values()) disposeResult(r);
  g.dispose();
  v3.dispose();
});

function parity(id: string, m: GoogLeNet | Inception3): void {
  const c = CASES.find((x) => x.id === id)!;
  const errs = checkParity(m, refs.get(id)!, id, 1e-4, { train: c.train, seed: c.seed });
  console.log(`# ${id}: max |err| / max |ref| per output: ${errs.map((e) => e.toExponential(2)).join(', ')}`);
}

// first, while the shared instances still hold their own initial weights
test('init follows torchvision: truncated normal, std 0.01 (googlenet) / 0.1, 0.01, 0.001 (inception_v3)', () => {
  tidy(() => {
    const std = (sd: Map<string, Tensor>, k: string): number => sd.get(k)!.std().item();
    const gs = g.stateDict();
    assert.ok(Math.abs(std(gs, 'inception4c.branch2.1.conv.weight') / 0.01 - 1) < 0.05);
    assert.ok(Math.abs(std(gs, 'aux1.fc2.weight') / 0.01 - 1) < 0.05);
    const vs = v3.stateDict();
    assert.ok(Math.abs(std(vs, 'Mixed_6b.branch7x7_2.conv.weight') / 0.1 - 1) < 0.05);
    assert.ok(Math.abs(std(vs, 'AuxLogits.conv1.conv.weight') / 0.01 - 1) < 0.05);
    assert.ok(Math.abs(std(vs, 'AuxLogits.fc.weight') / 0.001 - 1) < 0.1);
    assert.equal(vs.get('Mixed_7c.branch_pool.bn.weight')!.min().item(), 1);
    assert.equal(vs.get('Mixed_7c.branch_pool.bn.bias')!.abs().max().item(), 0);
  });
});

test('googlenet eval matches torchvision (64 px, aux heads present)', () => {
  parity('googlenet-eval-64', g);
});

test('googlenet training returns [logits, aux1, aux2] as torchvision (BN batch stats, same dropout masks)', () => {
  parity('googlenet-train-64', g);
});

test('googlenet without aux heads, with transformInput', () => {
  const m = googlenet({ numClasses: 10, auxLogits: false, transformInput: true, initWeights: false });
  try {
    parity('googlenet-noaux-transform-eval-48', m);
  } finally {
    m.dispose();
  }
});

test('inception_v3 eval matches torchvision (107 px)', () => {
  parity('inception_v3-eval-107', v3);
});

test('inception_v3 with transformInput at the 75 px minimum', () => {
  v3.transformInput = true;
  try {
    parity('inception_v3-transform-eval-75', v3);
  } finally {
    v3.transformInput = false;
  }
});

test('inception_v3 training returns [logits, aux] as torchvision (299 px)', () => {
  parity('inception_v3-train-299', v3);
});

test('registered with configs; inChannels, options and errors', () => {
  assert.deepEqual(listModels('inception').map((e) => e.name).sort(), ['googlenet', 'inception_v3']);
  const cfg = modelEntry('inception_v3').config;
  assert.deepEqual([cfg.inputSize, cfg.minInputSize, cfg.interpolation], [[3, 299, 299], 75, 'bilinear']);
  assert.deepEqual(modelEntry('googlenet').config.inputSize, [3, 224, 224]);
  const m = createModel('googlenet', { numClasses: 4, inChannels: 1, auxLogits: false, initWeights: false });
  try {
    m.eval();
    tidy(() => noGrad(() => {
      const y = m.call(randn([1, 1, 32, 32]));
      assert.ok(!Array.isArray(y));
      assert.deepEqual(y.shape, [1, 4]);
      assert.throws(() => m.call(randn([1, 3, 32, 32])), /expected an input of shape \[N, 1, H, W\]/);
    }));
  } finally {
    m.dispose();
  }
  assert.throws(() => googlenet({ inChannels: 1, transformInput: true }), /transformInput .* needs inChannels 3/);
  tidy(() => noGrad(() => {
    v3.eval();
    assert.throws(() => v3.call(randn([1, 3, 74, 74])), /inception_v3: expected an input of shape \[N, 3, H, W\] with H, W >= 75, found \[1, 3, 74, 74\]/);
    v3.train();
    assert.throws(() => v3.call(randn([2, 3, 120, 120])), /training with the aux head needs input of at least 299x299/);
  }));
});
