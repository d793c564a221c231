// loadPredictor over a convkit checkpoint: the libtorch and ONNX Runtime engines agree with each
// other and with the exported file, the engine is chosen by a short probe or forced, `convkit
// eval` gives a checkpoint and its export the same accuracy on a Fashion-MNIST subset, and bad
// files get errors that name them.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TinyCnn } from '../train/tiny_model.js';
import { cpuHasBf16, manualSeed, randn, type Tensor } from '../../src/engine/index.js';
import { FASHION_MNIST_CLASSES, writeSafetensors } from '../../src/io/index.js';
import { createModel, modelEntry, registerModel, type ModelOptions } from '../../src/models/index.js';
import { evaluateCheckpoint } from '../../src/train/eval_checkpoint.js';
import { evaluateOnnx, loadPredictor } from '../../src/deploy/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-deploy-ckpt-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const env = { ...process.env, CONVKIT_NUM_THREADS: '1' };
const run = path.join(dir, 'run');
const onnxFile = path.join(dir, 'tiny.onnx');

before(() => {
  // a few seconds of training: the weights must only be trained ones, not good ones
  const train = spawnSync(process.execPath, [MAIN, 'train', '--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '64',
    '--warmup-epochs', '0', '--bf16', 'off', '--channels-last', 'off', '--epochs', '1', '--limit-train', '512', '--limit-test', '64',
    '--out-dir', run, '--quiet'], { encoding: 'utf8', env });
  assert.equal(train.status, 0, train.stderr);
  const ex = spawnSync(process.execPath, [MAIN, 'export', run, '-o', onnxFile, '--import', TINY], { encoding: 'utf8', env });
  assert.equal(ex.status, 0, ex.stderr);
});

const maxAbs = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('a checkpoint on libtorch and on ONNX Runtime, and its exported file: one interface, the same logits and metadata', async () => {
  const lt = await loadPredictor(run, { engine: 'libtorch', precision: 'fp32' });
  const ortCk = await loadPredictor(path.join(run, 'best.safetensors'), { engine: 'onnxruntime', threads: 1 });
  const file = await loadPredictor(onnxFile, { threads: 1 });
  try {
    assert.equal(lt.engine, 'libtorch');
    assert.deepEqual(lt.precision, { bf16: false, channelsLast: false });
    assert.deepEqual(lt.choice.reason, 'asked');
    assert.equal(ortCk.engine, 'onnxruntime');
    assert.equal(ortCk.precision, null);
    assert.equal(file.engine, 'onnxruntime');
    assert.equal(file.choice.reason, 'onnx-file');
    // the checkpoint's own description equals what the export wrote
    assert.deepEqual({ ...lt.info, opset: 17 }, file.info);
    assert.deepEqual(lt.info.classNames, FASHION_MNIST_CLASSES);
    assert.deepEqual(lt.info.inputSize, [1, 28, 28]);
    manualSeed(3);
    const x = randn([5, 1, 28, 28]);
    const a = await lt.logits(x);
    const b = await ortCk.logits(x);
    const c = await file.logits(x);
    assert.deepEqual(a.dims, [5, 10]);
    assert.ok(maxAbs(a.data, b.data) < 1e-4, `libtorch vs ONNX Runtime: ${maxAbs(a.data, b.data)}`);
    assert.ok(maxAbs(a.data, c.data) < 1e-4, `libtorch vs the exported file: ${maxAbs(a.data, c.data)}`);
    // the same images through predict(): uint8 in, the same top-3 from both engines
    const pixels = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => (i * 29) % 256);
    const img = [{ data: pixels.subarray(0, 784), channels: 1, height: 28, width: 28 }, { data: pixels.subarray(784), channels: 1, height: 28, width: 28 }];
    const pa = await lt.predict(img, { top: 3 });
    const pc = await file.predict(img, { top: 3 });
    assert.deepEqual(pa.map((r) => r.map((p) => p.label)), pc.map((r) => r.map((p) => p.label)));
    pa.flat().forEach((p, i) => assert.ok(Math.abs(p.probability - pc.flat()[i].probability) < 1e-5));
    x.dispose();
  } finally {
    await Promise.all([lt.dispose(), ortCk.dispose(), file.dispose()]);
  }
  await assert.rejects(lt.logits(randn([1, 1, 28, 28])), /disposed/);
});

test('engine auto: a short timed probe picks among libtorch fp32, bf16 (where the CPU has it) and ONNX Runtime', async () => {
  const t0 = performance.now();
  const p = await loadPredictor(run, { probeMs: 300 });
  const ms = performance.now() - t0;
  try {
    assert.equal(p.choice.reason, 'probe');
    const timings = p.choice.timings!;
    assert.deepEqual(Object.keys(timings).sort(), (cpuHasBf16() ? ['libtorch bf16', 'libtorch fp32', 'onnxruntime'] : ['libtorch fp32', 'onnxruntime']));
    for (const v of Object.values(timings)) assert.ok(v > 0 && Number.isFinite(v));
    // the choice is the fastest (bf16 needs a 1.1x margin over the best fp32 path)
    const score = (k: string): number => timings[k] * (k.includes('bf16') ? 1.1 : 1);
    const best = Object.keys(timings).reduce((a, b) => (score(b) < score(a) ? b : a));
    assert.equal(p.engine, best === 'onnxruntime' ? 'onnxruntime' : 'libtorch');
    if (p.engine === 'libtorch') assert.equal(p.precision!.bf16, best === 'libtorch bf16');
    assert.ok(ms < 5000, `loading with the probe took ${ms.toFixed(0)} ms`);
    const [row] = await p.predict(randn([1, 1, 28, 28]), { top: 1 });
    assert.equal(row.length, 1);
  } finally {
    await p.dispose();
  }
  // precision fp32 with engine libtorch: nothing to time
  const q = await loadPredictor(path.join(run, 'model.safetensors'), { engine: 'libtorch', precision: 'fp32' });
  assert.equal(q.choice.timings, undefined);
  await q.dispose();
});

test('bf16 autocast on libtorch stays close to fp32', { skip: !cpuHasBf16() && 'this CPU has no native bf16' }, async () => {
  const fp = await loadPredictor(run, { engine: 'libtorch', precision: 'fp32' });
  const bf = await loadPredictor(run, { engine: 'libtorch', precision: 'bf16' });
  try {
    assert.deepEqual(bf.precision, { bf16: true, channelsLast: true });
    manualSeed(4);
    const x = randn([4, 1, 28, 28]);
    const a = await fp.logits(x);
    const b = await bf.logits(x);
    const scale = a.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbs(a.data, b.data) < 0.05 * scale + 0.05, `bf16 vs fp32: ${maxAbs(a.data, b.data)} (scale ${scale})`);
  } finally {
    await Promise.all([fp.dispose(), bf.dispose()]);
  }
});

test('a checkpoint and its export give the same accuracy on a Fashion-MNIST subset (library and convkit eval)', async () => {
  const ck = await evaluateCheckpoint(path.join(run, 'model.safetensors'), 'fashion-mnist', { limit: 300, bf16: false, batchSize: 128 });
  const ox = await evaluateOnnx(onnxFile, 'fashion-mnist', { limit: 300, batchSize: 128, threads: 1 });
  assert.equal(ox.result.count, 300);
  assert.equal(ox.result.top1, ck.result.top1);
  assert.equal(ox.result.top5, ck.result.top5);
  assert.ok(Math.abs(ox.result.loss - ck.result.loss) < 1e-4, `loss ${ox.result.loss} vs ${ck.result.loss}`);
  assert.deepEqual(ox.result.confusion.toJSON(), ck.result.confusion.toJSON());
  assert.deepEqual(ox.classes, ck.classes);

  const cli = (file: string, ...more: string[]): { top1: number; count: number } => {
    const r = spawnSync(process.execPath, [MAIN, 'eval', file, 'fashion-mnist', '--limit', '300', '--json', '--bf16', 'off', '--import', TINY, ...more].filter((a) => !(file.endsWith('.onnx') && (a === '--bf16' || a === 'off'))), { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { top1: number; count: number };
  };
  const a = cli(path.join(run, 'model.safetensors'));
  const b = cli(onnxFile);
  assert.equal(a.count, 300);
  assert.equal(b.top1, a.top1);
  // options an .onnx file carries itself are refused
  const bad = spawnSync(process.execPath, [MAIN, 'eval', onnxFile, 'fashion-mnist', '--ema'], { encoding: 'utf8', env });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--ema: not for an \.onnx file/);
});

test('bad files: missing, not ONNX, a checkpoint of an unknown model, options that do not fit', async () => {
  await assert.rejects(loadPredictor(path.join(dir, 'nope.onnx')), /nope\.onnx: no such file/);
  const notOnnx = path.join(dir, 'text.onnx');
  fs.writeFileSync(notOnnx, 'this is not a protobuf model at all\n'.repeat(20));
  await assert.rejects(loadPredictor(notOnnx), (e: Error) => e.message.includes(notOnnx) && /not an ONNX model|cannot load/.test(e.message));
  const empty = path.join(dir, 'empty.onnx');
  fs.writeFileSync(empty, '');
  await assert.rejects(loadPredictor(empty), /empty\.onnx is not an ONNX model/);
  // a checkpoint written by convkit for a model this process does not know
  const m = createModel('tiny_cnn');
  const unknown = path.join(dir, 'unknown.safetensors');
  writeSafetensors(unknown, new Map(m.namedParameters()), { convkit_model: 'no_such_net' });
  m.dispose();
  await assert.rejects(loadPredictor(unknown), /unknown model 'no_such_net'/);
  // weights convkit did not write, with no model named
  const anon = path.join(dir, 'anon.safetensors');
  writeSafetensors(anon, new Map([['w', randn([2])]]));
  await assert.rejects(loadPredictor(anon), /give --model/);
  await assert.rejects(loadPredictor(onnxFile, { engine: 'libtorch' }), /ONNX file: it runs on ONNX Runtime/);
  await assert.rejects(loadPredictor(run, { engine: 'tensorrt' as 'libtorch' }), /engine must be auto, onnxruntime or libtorch/);
  await assert.rejects(loadPredictor(run, { engine: 'onnxruntime', precision: 'bf16' }), /bf16 is libtorch's/);
});

// a forward with an op ONNX export has no mapping for (cumsum)
class CumsumCnn extends TinyCnn {
  override forward(x: Tensor): Tensor {
    return super.forward(x).cumsum(1);
  }
}
registerModel({ name: 'cumsum_cnn', config: modelEntry('tiny_cnn').config, build: (o: ModelOptions) => new CumsumCnn(o) });

test('a model that cannot be exported: auto falls back to libtorch and says why; onnxruntime asked for fails naming the op', async () => {
  const m = createModel('cumsum_cnn');
  const file = path.join(dir, 'cumsum.safetensors');
  writeSafetensors(file, new Map([...m.namedParameters(), ...m.namedBuffers()]), { convkit_model: 'cumsum_cnn', convkit_model_options: '{}' });
  m.dispose();
  const p = await loadPredictor(file, { precision: 'fp32' });
  try {
    assert.equal(p.engine, 'libtorch');
    assert.equal(p.choice.reason, 'fallback');
    assert.match(p.choice.note ?? '', /ONNX Runtime: .*cumsum/);
    const [row] = await p.predict(randn([1, 1, 28, 28]), { top: 2 });
    assert.equal(row.length, 2);
  } finally {
    await p.dispose();
  }
  await assert.rejects(loadPredictor(file, { engine: 'onnxruntime' }), /cumsum\.safetensors cannot run on ONNX Runtime: .*cumsum/);
});
