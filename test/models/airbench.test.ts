// Airbench against its PyTorch reference (test/helpers/ref_models.py): names, counts and outputs
// in eval and training mode with gradients, the whitening filters computed from the same images,
// the eigen-solver behind them, and the Trainer's data-dependent initialisation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { arange, manualSeed, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { Airbench, airbenchSmall, createModel, modelEntry, symmetricEigen } from '../../src/models/index.js';
import { Trainer } from '../../src/train/index.js';
import { assertClose, checkGradients, checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';

const cases: { oracle: OracleCase; model: string; opts: Record<string, unknown> }[] = [
  { model: 'airbench_s', opts: { inChannels: 1 }, oracle: { id: 'airbench_s', name: 'airbench_s', seed: 11, builder: 'ref_models.airbench_s', kwargs: { in_channels: 1 }, input: [3, 1, 28, 28] } },
  { model: 'airbench_m', opts: { inChannels: 1 }, oracle: { id: 'airbench_m', name: 'airbench_m', seed: 15, builder: 'ref_models.airbench_m', kwargs: { in_channels: 1 }, input: [2, 1, 28, 28] } },
  { model: 'airbench94', opts: {}, oracle: { id: 'airbench94', name: 'airbench94', seed: 12, builder: 'ref_models.airbench94', input: [2, 3, 32, 32] } },
  { model: 'airbench96', opts: {}, oracle: { id: 'airbench96', name: 'airbench96', seed: 18, builder: 'ref_models.airbench96', input: [2, 3, 32, 32] } },
  {
    model: 'airbench_s', opts: { inChannels: 1, numClasses: 7 },
    oracle: { id: 'airbench_s_train', name: 'airbench_s', seed: 13, builder: 'ref_models.airbench_s', kwargs: { in_channels: 1, num_classes: 7 }, input: [6, 1, 28, 28], train: true, backward: true },
  },
  { model: 'airbench_s', opts: { inChannels: 1, residual: true }, oracle: { id: 'airbench_s_residual_eval', name: 'airbench_s', seed: 17, builder: 'ref_models.airbench_s', kwargs: { in_channels: 1, residual: true }, input: [2, 1, 28, 28] } },
  {
    model: 'airbench_s', opts: { inChannels: 1, residual: true },
    oracle: { id: 'airbench_s_residual', name: 'airbench_s', seed: 16, builder: 'ref_models.airbench_s', kwargs: { in_channels: 1, residual: true }, input: [4, 1, 28, 28], train: true, backward: true },
  },
  { model: 'airbench_s', opts: { inChannels: 1 }, oracle: { id: 'airbench_whitened', name: 'airbench_s', seed: 14, builder: 'ref_models.airbench_whitened', input: [1, 1, 28, 28] } },
];

let refs = new Map<string, OracleResult>();
before(() => {
  refs = runOracle(cases.map((c) => c.oracle));
});
after(() => {
  for (const r of refs.values()) disposeResult(r);
});

for (const c of cases.filter((k) => k.oracle.id !== 'airbench_whitened')) {
  test(`parity: ${c.oracle.id}`, () => {
    const ref = refs.get(c.oracle.id)!;
    const model = createModel(c.model, c.opts);
    try {
      checkParity(model, ref, c.oracle.id, 1e-4, { train: c.oracle.train, seed: c.oracle.seed });
      if (c.oracle.backward) {
        // the whitening is fixed: PyTorch gives it no gradient, and neither does convkit
        assert.ok(!ref.grads.has('whiten.weight'));
        assert.equal(ref.grads.size, model.parameters().length - 1);
        checkGradients(model, ref, c.oracle.id, 1e-3, { train: true, seed: c.oracle.seed });
      }
    } finally {
      model.dispose();
    }
  });
}

/** whitening_images() of ref_models.py: sin(0.37 i) + cos(0.11 i) * (i mod 7) over the flat index. */
function whiteningImages(): Tensor {
  return tidy(() => {
    const i = arange(0, 16 * 144).double();
    const mod7 = i.sub(i.div(7).floor().mul(7));
    return i.mul(0.37).sin().add(i.mul(0.11).cos().mul(mod7)).reshape([16, 1, 12, 12]).float();
  });
}

test('the whitening filters from the same images equal the reference\'s', () => {
  const ref = refs.get('airbench_whitened')!;
  const model = airbenchSmall({ inChannels: 1 });
  const images = whiteningImages();
  try {
    const before = model.whiten.weight.clone();
    model.initFromData(images);
    assertClose(model.whiten.weight, ref.state.get('whiten.weight')!, 'whiten.weight', 1e-5);
    assert.ok(!model.whiten.weight.allclose(before), 'initFromData replaced the data-free filters');
    // and the whitened model computes what the reference computes
    checkParity(model, ref, 'airbench_whitened');
    before.dispose();
  } finally {
    images.dispose();
    model.dispose();
  }
});

test('symmetricEigen: a hand-computed 2x2, and V diag(values) V^T rebuilds a random 6x6', () => {
  const two = symmetricEigen([2, 1, 1, 2], 2);
  assert.deepEqual(Array.from(two.values).map((v) => +v.toFixed(12)), [3, 1]);
  assert.ok(Math.abs(Math.abs(two.vectors[0]) - Math.SQRT1_2) < 1e-12 && Math.abs(Math.abs(two.vectors[2]) - Math.SQRT1_2) < 1e-12);
  const d = 6;
  const b = Array.from({ length: d * d }, (_, i) => Math.sin(i * 1.7) + 0.3 * Math.cos(i * 0.3));
  const a = new Float64Array(d * d);
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) for (let k = 0; k < d; k++) a[r * d + c] += b[r * d + k] * b[c * d + k];
  const { values, vectors } = symmetricEigen(a, d);
  for (let i = 1; i < d; i++) assert.ok(values[i - 1] >= values[i], 'eigenvalues decrease');
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) {
    let v = 0;
    for (let k = 0; k < d; k++) v += vectors[r * d + k] * values[k] * vectors[c * d + k];
    assert.ok(Math.abs(v - a[r * d + c]) < 1e-9, `A[${r}][${c}] = ${a[r * d + c]}, rebuilt ${v}`);
  }
});

test('airbench: config, fixed whitening, options and bad input', () => {
  const e = modelEntry('airbench_s').config;
  assert.deepEqual([e.family, e.inputSize, e.minInputSize, e.torchvision], ['airbench', [1, 28, 28], 25, false]);
  const m = new Airbench({ inChannels: 1, widths: [8, 16, 24], numClasses: 3 });
  try {
    assert.equal(m.whiten.weight.requiresGrad, false);
    assert.equal(m.numParameters() - m.numParameters(true), 8 * 1 * 2 * 2);
    tidy(() => assert.deepEqual(m.eval().call(randn([2, 1, 25, 25])).shape, [2, 3]));
    assert.throws(() => tidy(() => m.call(randn([2, 1, 24, 24]))), /airbench: expected an input of shape \[N, 1, H, W\] with H, W >= 25, found \[2, 1, 24, 24\]/);
    assert.throws(() => new Airbench({ widths: [8, 16] as unknown as [number, number, number] }), /widths must be three positive integers, got \[8,16\]/);
    assert.throws(() => new Airbench({ residual: 'yes' as unknown as boolean }), /airbench: residual must be true or false, got "yes"/);
    assert.throws(() => tidy(() => m.initFromData(randn([4, 3, 12, 12]))), /airbench.initFromData: expected normalised images \[N, 1, H, W\], found \[4, 3, 12, 12\]/);
  } finally {
    m.dispose();
  }
});

test('the Trainer whitens from the training images before the first step and never trains the whitening', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-airbench-'));
  manualSeed(0);
  const fresh = airbenchSmall({ inChannels: 1 });
  const t = Trainer.create({
    model: 'airbench_s', dataset: 'synthetic', imageSize: [28, 28], inChannels: 1, numClasses: 4, limitTrain: 128, limitTest: 32, epochs: 1,
    batchSize: 32, lr: 0.05, warmupEpochs: 0, threads: 1, bf16: false, channelsLast: true, outDir: dir, reportImages: 0,
  });
  try {
    assert.ok(!t.groups.some((g) => g.params.includes(t.model.stateDict().get('whiten.weight') as never)), 'the whitening is in no optimizer group');
    await t.run();
    const w = (t.model as Airbench).whiten.weight;
    assert.ok(!w.allclose(fresh.whiten.weight), 'the whitening was computed from data');
    const saved = tidy(() => {
      const direct = airbenchSmall({ inChannels: 1 });
      const imgs = t.data.train.getBatch(Array.from({ length: 128 }, (_, i) => i)) as { x: Tensor; y: Tensor };
      direct.initFromData(imgs.x.float().div(255).sub(t.data.mean[0]).div(t.data.std[0]));
      const same = direct.whiten.weight.allclose(w, 1e-4, 1e-5);
      direct.dispose();
      return same;
    });
    assert.ok(saved, 'the whitening after training is the one the first 5000 (here all 128) normalised images give: never updated');
  } finally {
    t.dispose();
    fresh.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
