// Pruning's guarantees: removing channels that carry nothing leaves the outputs as they were,
// Taylor importance is the hand-computed |activation x gradient|, the sparsity schedule is Zhu &
// Gupta's formula and the masks hold, a pruned checkpoint goes through save -> load (eval,
// export, predict) -> ONNX Runtime with convkit's numbers, and bad input gets clear errors with
// nothing written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, Module, ReLU, Sequential, ZeroPadChannels } from '../../src/nn/index.js';
import { createModel, type CifarResNet } from '../../src/models/index.js';
import { saveModelWeights } from '../../src/train/checkpoint.js';
import { loadExportSource } from '../../src/export/source.js';
import { exportOnnx } from '../../src/export/export.js';
import { openModelFile } from '../../src/train/eval_checkpoint.js';
import { loadPredictor } from '../../src/deploy/index.js';
import { FASHION_MNIST_CLASSES } from '../../src/io/index.js';
import {
  MagnitudePruner, PruneError, buildDependencyGraph, channelImportance, gradualSparsity, pruneChannels, pruneCheckpoint, pruneUnits, sparseBytes,
} from '../../src/compress/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-prune-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

type M = Module<[Tensor], Tensor>;
const asAny = (m: unknown): Module<unknown[], unknown> => m as Module<unknown[], unknown>;
const forward = (m: M, x: Tensor): Float32Array => noGrad(() => tidy(() => m.eval().call(x).toTypedArray() as Float32Array));
const layer = (m: unknown, name: string): unknown => new Map(asAny(m).namedModules()).get(name);
const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i])), 0);

/** A resnet20 checkpoint for gray 28x28 images, written as `convkit train` writes model.safetensors. */
function resnet20File(name: string): string {
  manualSeed(3);
  const m = createModel('resnet20', { numClasses: 10, inChannels: 1 });
  // BN statistics away from the identity, so that folding and slicing them is exercised
  noGrad(() => {
    for (const mod of m.modules()) if (mod instanceof BatchNorm2d) {
      mod.buffer('running_mean')!.copy_(randn([mod.numFeatures]).mul(0.1));
      mod.buffer('running_var')!.copy_(randn([mod.numFeatures]).abs().add(0.5));
      mod.weight!.copy_(randn([mod.numFeatures]).abs().add(0.2));
    }
  });
  const file = path.join(dir, name);
  saveModelWeights(file, asAny(m) as unknown as Module<never[], unknown>, {
    convkit_model: 'resnet20', convkit_model_options: JSON.stringify({ numClasses: 10, inChannels: 1 }),
    convkit_classes: JSON.stringify(FASHION_MNIST_CLASSES), convkit_normalization: JSON.stringify({ mean: [0.286], std: [0.353] }), convkit_dataset: 'fashion-mnist',
  });
  m.dispose();
  return file;
}

test('removing channels whose BatchNorm zeroes them leaves the outputs as they were', () => {
  manualSeed(0);
  const m = createModel('resnet20', { numClasses: 10 }) as unknown as CifarResNet;
  const x = randn([3, 3, 32, 32]);
  try {
    noGrad(() => {
      for (const [name, chans] of [['layer1.0.bn1', [0, 3, 7]], ['layer3.2.bn1', [1, 2, 40, 63]]] as const) {
        const bn = layer(m, name) as BatchNorm2d;
        for (const c of chans) {
          bn.weight!.narrow(0, c, 1).zero_();
          bn.bias!.narrow(0, c, 1).zero_();
        }
      }
    });
    const before = forward(m as unknown as M, x);
    const layers = pruneUnits(asAny(m), x, (g) => {
      const gamma = channelImportance(asAny(m), g, 'bn');
      return g.units.map((u) => u.id).filter((u) => gamma[u] === 0);
    });
    assert.deepEqual(layers, {
      'layer1.0.conv1': [16, 13, 1], 'layer1.0.bn1': [13], 'layer1.0.conv2': [13, 16, 1],
      'layer3.2.conv1': [64, 60, 1], 'layer3.2.bn1': [60], 'layer3.2.conv2': [60, 64, 1],
    });
    const after = forward(m as unknown as M, x);
    assert.ok(maxDiff(before, after) < 1e-5, `outputs moved by ${maxDiff(before, after)}`);
  } finally {
    x.dispose();
    m.dispose();
  }
});

test('groups keep multiples of 16 channels; groups of 16 are halved only when the target needs it', () => {
  manualSeed(0);
  const x = randn([2, 3, 32, 32]);
  try {
    for (const [target, halved] of [[0.5, false], [0.3, true]] as const) {
      const m = createModel('resnet20', { numClasses: 10 });
      const r = pruneChannels(asAny(m), x, { targetMacs: target, method: 'l1' });
      m.dispose();
      assert.ok(r.macsAfter <= target * r.macsBefore && r.macsAfter > 0.8 * target * r.macsBefore, `${target}: ${r.macsAfter / r.macsBefore}`);
      for (const g of r.groups) {
        const kept = g.channels - g.removed;
        assert.equal(kept % (halved && g.channels <= 16 ? 8 : 16), 0, `${target}, ${g.label}: keeps ${kept} of ${g.channels}`);
      }
      assert.equal(r.groups.some((g) => g.channels === 16 && g.removed === 8), halved, `${target}: a 16-channel group halved`);
      assert.ok(r.groups.some((g) => g.channels === 64 && g.removed > 0 && g.removed < 64), 'a 64-channel group pruned');
    }
  } finally {
    x.dispose();
  }
});

test('the zero channels of the option-A shortcut go with the channels they are added to', () => {
  manualSeed(2);
  const m = createModel('resnet20', { numClasses: 10 }) as unknown as CifarResNet;
  const x = randn([3, 3, 32, 32]);
  try {
    m.eval();
    const g = buildDependencyGraph(asAny(m), x);
    assert.deepEqual(g.pads.map((p) => [p.path, p.front.length, p.back.length]), [['layer2.0.downsample.pad', 8, 8], ['layer3.0.downsample.pad', 16, 16]]);
    // five of the units tied to stage 2's front zeros: every BatchNorm channel of theirs gets
    // zero weight and bias, so the blocks add zeros to zeros there and removing them changes nothing
    const front = new Set(Array.from(g.pads[0].front, (a) => g.unitOf(a)));
    assert.equal(front.size, 8);
    assert.ok(!front.has(-1), 'every zero channel of stage 2 is prunable');
    const picked = new Set([...front].slice(0, 5));
    noGrad(() => {
      for (const u of g.uses) {
        if (u.kind !== 'bn') continue;
        u.out.forEach((a, c) => {
          if (!picked.has(g.unitOf(a))) return;
          u.module.weight!.narrow(0, c, 1).zero_();
          u.module.bias!.narrow(0, c, 1).zero_();
        });
      }
    });
    const before = forward(m as unknown as M, x);
    const layers = pruneUnits(asAny(m), x, () => picked);
    assert.deepEqual(layers['layer2.0.downsample.pad'], [3, 8]);
    assert.deepEqual(layers['layer2.0.bn2'], [27]);
    assert.deepEqual(layers['layer3.0.conv1'], [27, 64, 1]);
    assert.deepEqual(layers['layer3.2.bn2'], [59]);
    assert.deepEqual(layers.fc, [59, 10]);
    assert.equal(layers['layer3.0.downsample.pad'], undefined);
    assert.equal((layer(m, 'layer2.0.downsample.pad') as ZeroPadChannels).front, 3);
    const after = forward(m as unknown as M, x);
    assert.ok(maxDiff(before, after) < 1e-5, `outputs moved by ${maxDiff(before, after)}`);
  } finally {
    x.dispose();
    m.dispose();
  }
});

test('Taylor importance is |sum of activation x gradient| per image, summed (by hand)', () => {
  manualSeed(1);
  const conv = new Conv2d(1, 2, 1);
  const fc = new Linear(2, 3);
  const model = new Sequential(conv, new AdaptiveAvgPool2d([1, 1]), new Flatten(), fc);
  const x = randn([4, 1, 3, 3]);
  const y = tensor([0, 2, 1, 2], { dtype: 'int64' });
  try {
    const g = buildDependencyGraph(asAny(model), x);
    assert.equal(g.units.length, 2, 'the conv\'s two channels (the logits are fixed)');
    const s = channelImportance(asAny(model), g, 'taylor', [{ x, y }]);
    // by hand: a = w_c x + b_c, p = mean_hw a, z = W p + B, dL/dz = (softmax(z) - onehot) / N,
    // dL/da = sum_k dL/dz_k W_kc / HW, so per image sum_hw a dL/da = p_c sum_k dL/dz_k W_kc
    const xs = x.toTypedArray() as Float32Array;
    const w = conv.weight.toTypedArray() as Float32Array;
    const b = conv.bias!.toTypedArray() as Float32Array;
    const W = fc.weight.toTypedArray() as Float32Array;
    const B = fc.bias!.toTypedArray() as Float32Array;
    const labels = [0, 2, 1, 2];
    const want = [0, 0];
    for (let n = 0; n < 4; n++) {
      const mean = xs.slice(n * 9, n * 9 + 9).reduce((a, v) => a + v, 0) / 9;
      const p = [w[0] * mean + b[0], w[1] * mean + b[1]];
      const z = [0, 1, 2].map((k) => W[k * 2] * p[0] + W[k * 2 + 1] * p[1] + B[k]);
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const sum = e.reduce((a, v) => a + v, 0);
      const dz = e.map((v, k) => (v / sum - (k === labels[n] ? 1 : 0)) / 4);
      for (let c = 0; c < 2; c++) want[c] += Math.abs(p[c] * (dz[0] * W[c] + dz[1] * W[2 + c] + dz[2] * W[4 + c]));
    }
    for (let c = 0; c < 2; c++) {
      const u = g.unitOf(g.uses[0].out[c]);
      assert.ok(Math.abs(s[u] - want[c]) <= 1e-6 + 1e-4 * want[c], `channel ${c}: ${s[u]} vs ${want[c]} by hand`);
    }
    assert.equal(conv.weight.grad, null, 'the parameters\' gradients are cleared');
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
  }
});

test('the gradual sparsity schedule is Zhu & Gupta\'s cubic, and the masks hold through updates', () => {
  const s = { final: 0.8, initial: 0.1, start: 10, end: 110, every: 10 };
  const formula = (t: number): number => 0.8 + (0.1 - 0.8) * (1 - (t - 10) / 100) ** 3;
  assert.equal(gradualSparsity(0, s), 0);
  assert.ok(Math.abs(gradualSparsity(10, s) - 0.1) < 1e-12, 's_i at t_0');
  for (const t of [20, 50, 90]) assert.ok(Math.abs(gradualSparsity(t, s) - formula(t)) < 1e-12, `step ${t}`);
  assert.ok(Math.abs(gradualSparsity(57, s) - formula(50)) < 1e-12, 'held between updates');
  assert.equal(gradualSparsity(110, s), 0.8);
  assert.equal(gradualSparsity(5000, s), 0.8);
  assert.throws(() => gradualSparsity(0, { final: 1, end: 10 }), /final must be in \[0, 1\)/);

  for (const scope of ['global', 'layer'] as const) {
    manualSeed(2);
    const model = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new Flatten(), new Linear(4 * 6 * 6, 10));
    const p = new MagnitudePruner(asAny(model), { scope });
    try {
      p.setSparsity(0.5);
      const r = p.report();
      assert.equal(r.total.zeros, scope === 'global' ? Math.floor(0.5 * r.total.numel) : r.layers.reduce((n, l) => n + Math.floor(0.5 * l.numel), 0));
      if (scope === 'layer') for (const l of r.layers) assert.equal(l.sparsity, Math.floor(0.5 * l.numel) / l.numel);
      else assert.notEqual(r.layers[0].sparsity, r.layers[1].sparsity, 'one global threshold prunes the layers unevenly');
      // an optimizer step moves every weight; the masks put the zeros back
      noGrad(() => { for (const [, w] of p.weights) w.add_(tidy(() => randn(w.shape).mul(0.01).abs().add(0.01))); });
      p.apply();
      assert.equal(p.report().total.zeros, r.total.zeros);
      const bytes = sparseBytes(r.layers);
      assert.ok(bytes.sparse < 0.6 * bytes.dense, 'a bitmap and the nonzeros take about half the bytes at 50%');
    } finally {
      p.dispose();
      model.dispose();
    }
  }
});

test('a pruned checkpoint round-trips: save, load (eval, export, predict), ONNX Runtime equals convkit', async () => {
  const file = resnet20File('r20.safetensors');
  const out = path.join(dir, 'pruned');
  const r = await pruneCheckpoint(file, { method: 'l1', targetMacs: 0.5, outDir: out });
  assert.ok(r.macsAfter! <= 0.5 * r.macsBefore! && r.macsAfter! > 0.4 * r.macsBefore!);
  assert.ok(Object.keys(r.prunedLayers).length > 0);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'prune.json'), 'utf8')) as { prunedLayers: Record<string, number[]> };
  assert.deepEqual(report.prunedLayers, r.prunedLayers);
  // export's loader builds the smaller model from the file's model options
  const src = loadExportSource(path.join(out, 'model.safetensors'));
  try {
    const pruned = src.model as unknown as CifarResNet;
    const conv1 = layer(pruned, 'layer3.0.conv1') as Conv2d;
    assert.equal(conv1.outChannels, r.prunedLayers['layer3.0.conv1'][1]);
    assert.ok(conv1.outChannels < 64);
    const pad = layer(pruned, 'layer2.0.downsample.pad') as ZeroPadChannels;
    assert.deepEqual([pad.front, pad.back], r.prunedLayers['layer2.0.downsample.pad']);
    const x = randn([3, 1, 28, 28]);
    const { bytes } = exportOnnx(src.model, src.example, { metadata: src.metadata });
    const s = await ort.InferenceSession.create(bytes);
    const o = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
    const got = o[s.outputNames[0]].data as Float32Array;
    await s.release();
    const ref = forward(src.model as unknown as M, x);
    assert.ok(maxDiff(got, ref) < 1e-4, `ONNX Runtime vs convkit: ${maxDiff(got, ref)}`);
    // eval's loader and the libtorch predictor build it too, with the same numbers
    const opened = openModelFile(path.join(out, 'model.safetensors'));
    assert.ok(maxDiff(forward(opened.model as unknown as M, x), ref) < 1e-6);
    opened.model.dispose();
    const pred = await loadPredictor(path.join(out, 'model.safetensors'), { engine: 'libtorch', precision: 'fp32' });
    const l = await pred.logits(x);
    assert.ok(maxDiff(l.data, ref) < 1e-5);
    await pred.dispose();
    x.dispose();
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
});

test('convkit prune: fine-tunes with the trainer into a run folder that eval and export read', () => {
  const file = resnet20File('r20cli.safetensors');
  const out = path.join(dir, 'cli');
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  const r = run('prune', file, '--method', 'bn', '--target-macs', '0.6', '--finetune-epochs', '1', '--limit-train', '128', '--limit-test', '64', '--batch-size', '64', '-o', out);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /MACs .* -> .*\(\d+\.\d%\)/);
  for (const f of ['model.safetensors', 'last.safetensors', 'prune.json', 'recipe.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.ok(!fs.existsSync(path.join(out, 'pruned-init.safetensors')));
  const e = run('eval', path.join(out, 'last.safetensors'), 'fashion-mnist', '--limit', '32', '--json', '--quiet');
  assert.equal(e.status, 0, e.stderr);
  const x = run('export', out, '-o', path.join(dir, 'cli.onnx'));
  assert.equal(x.status, 0, x.stderr);
  const h = run('prune', '--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--target-macs/);
});

test('iterative Taylor pruning on real data meets the target; magnitude pruning holds its sparsity through fine-tuning', async () => {
  const file = resnet20File('r20it.safetensors');
  const out = path.join(dir, 'iterative');
  const r = await pruneCheckpoint(file, { method: 'taylor', targetMacs: 0.5, iterative: 2, taylorBatches: 1, batchSize: 32, limitTrain: 64, outDir: out, roundTo: 1 });
  assert.equal(r.rounds.length, 2);
  assert.ok(Math.abs(r.rounds[0].structured!.macsAfter / r.macsBefore! - Math.SQRT1_2) < 0.05, 'round 1 at sqrt(0.5)');
  assert.ok(r.macsAfter! <= 0.5 * r.macsBefore! && r.macsAfter! > 0.45 * r.macsBefore!);
  assert.ok(r.rounds.every((x) => x.finetune === null));

  const mag = path.join(dir, 'magnitude');
  const m = await pruneCheckpoint(file, {
    method: 'magnitude', sparsity: 0.6, scope: 'layer', finetuneEpochs: 1, limitTrain: 128, limitTest: 32, batchSize: 16, outDir: mag, recipe: { reportImages: 0 },
  });
  assert.ok(Math.abs(m.sparsity!.total.sparsity - 0.6) < 0.01, `sparsity ${m.sparsity!.total.sparsity}`);
  for (const l of m.sparsity!.layers) assert.ok(Math.abs(l.sparsity - Math.floor(0.6 * l.numel) / l.numel) < 1e-9, `${l.name}: ${l.sparsity}`);
  // the saved weights are the masked ones
  const src = loadExportSource(mag);
  const w = (layer(src.model, 'layer2.0.conv1') as Conv2d).weight;
  const zeros = noGrad(() => tidy(() => w.eq(tensor(0)).sum().item()));
  assert.equal(zeros, Math.floor(0.6 * w.numel()));
  src.model.dispose();
  src.example.dispose();
});

test('bad input: clear errors, nothing written', async () => {
  const file = resnet20File('r20bad.safetensors');
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'prune', ...args], { encoding: 'utf8' });
  const out = path.join(dir, 'never');
  for (const t of ['0', '1', '1.5', '-0.2']) {
    const r = run(file, '--method', 'l1', `--target-macs=${t}`, '-o', out);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--target-macs is the fraction of the MACs to keep and must be in \(0, 1\)/);
  }
  let r = run(file, '--method', 'magnitude', '--target-macs', '0.5', '-o', out);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /needs --sparsity/);
  r = run(file, '--method', 'l1', '--target-macs', '0.5', '--model', 'resnet32', '-o', out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not fit model CifarResNet/);
  r = run(file, '--method', 'taylor', '--target-macs', '0.5', '--dataset', 'cifar10', '--limit-train', '8', '-o', out);
  assert.equal(r.status, 1, 'gray weights on RGB data');
  assert.ok(!fs.existsSync(out), 'no output folder');

  // a sequence model, a model without convolutions
  const lstm = path.join(dir, 'lstm.safetensors');
  const seq = createModel('lstm_classifier', { numClasses: 10 });
  saveModelWeights(lstm, seq as unknown as Module<never[], unknown>, { convkit_model: 'lstm_classifier', convkit_model_options: JSON.stringify({ numClasses: 10 }) });
  seq.dispose();
  await assert.rejects(pruneCheckpoint(lstm, { method: 'l1', targetMacs: 0.5, outDir: out }), /lstm_classifier is a sequence model: channel pruning is for convolutional models/);
  const mlp = new Sequential(new Flatten(), new Linear(4, 3));
  const x = randn([2, 1, 2, 2]);
  assert.throws(() => pruneChannels(asAny(mlp), x, { targetMacs: 0.5, method: 'l1' }), (e: Error) => e instanceof PruneError && /has no Conv2d layer/.test(e.message));
  mlp.dispose();
  x.dispose();
  assert.ok(!fs.existsSync(out));

  // a description of another model
  assert.throws(() => createModel('resnet20', { prunedLayers: { 'layer9.conv1': [16, 8, 1] } }), /no module 'layer9.conv1' .*another model/);
  assert.throws(() => createModel('resnet20', { prunedLayers: { 'layer1.0.conv1': [16, 32, 1] } }), /would grow/);
  assert.throws(() => createModel('resnet20', { prunedLayers: { 'layer1.0.bn1': [0] } }), /BatchNorm2d, whose sizes must be positive, got \[0\]/);
  assert.throws(() => createModel('resnet20', { prunedLayers: { 'layer2.0.downsample.pad': [-1, 8] } }), /must be 1 to 3 whole numbers/);
});
