// Quantization-aware training: the fake-quantized convolution against a hand computation of the
// int8 / uint8 grids, gradients passing straight through, ranges that move only in training
// passes; and end to end, a small CNN trained on real Fashion-MNIST, fine-tuned with
// `convkit train --qat`, quantized by `convkit quantize`: ONNX Runtime's int8 file agrees with
// the fake-quantized model it came from.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import '../train/tiny_model.js';
import { F, FakeQuantObservers, fakeQuant, manualSeed, noGrad, randn, tensor, tidy, uint8Params } from '../../src/engine/index.js';
import { createModel, loadModelWeights } from '../../src/models/index.js';
import { compareLogits, loadCalibrationImages, loadFloatGraph } from '../../src/compress/index.js';
import type { Module } from '../../src/nn/index.js';
import type { Tensor } from '../../src/engine/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-qat-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const env = { ...process.env, CONVKIT_NUM_THREADS: '1' };
const cli = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env });

/** x rounded onto the uint8 grid of [lo, hi], by hand. */
function uint8Round(x: Float32Array, lo: number, hi: number): Float32Array {
  const q = uint8Params(lo, hi);
  return x.map((v) => (Math.min(255, Math.max(0, Math.round(v / q.scale) + q.zeroPoint)) - q.zeroPoint) * q.scale);
}

/** w [out, ...] rounded symmetric per output channel onto [-127, 127] x max|w_c| / 127, by hand. */
function int8RoundPerChannel(w: Float32Array, out: number): Float32Array {
  const per = w.length / out;
  const r = new Float32Array(w.length);
  for (let c = 0; c < out; c++) {
    const row = w.subarray(c * per, (c + 1) * per);
    const s = Math.fround(Math.fround(Math.max(...Array.from(row, Math.abs))) / 127);
    for (let k = 0; k < per; k++) r[c * per + k] = Math.max(-127, Math.min(127, Math.round(row[k] / s))) * s;
  }
  return r;
}

test('a fake-quantized convolution equals the convolution of the hand-rounded input and weights; gradients pass straight through', () => {
  manualSeed(1);
  tidy(() => {
    const x = randn([2, 3, 6, 6]);
    const w = randn([4, 3, 3, 3]).mul(0.3).detach();
    w.requiresGrad = true;
    const xs = x.toTypedArray() as Float32Array;
    const obs = new FakeQuantObservers();
    const got = fakeQuant(obs, () => F.conv2d(x, w, null, { padding: 1 }));
    assert.equal(obs.size, 1);
    const xq = tensor(uint8Round(xs, Math.min(...xs), Math.max(...xs))).reshape([2, 3, 6, 6]);
    const wq = tensor(int8RoundPerChannel(w.toTypedArray() as Float32Array, 4)).reshape([4, 3, 3, 3]).detach();
    wq.requiresGrad = true;
    const want = F.conv2d(xq, wq, null, { padding: 1 });
    assert.ok(got.sub(want).abs().max().item() < 1e-5, 'fake-quantized conv differs from the hand-rounded one');
    // straight-through: d/dw of the fake-quantized layer is d/dwq of the rounded one (no weight is clamped)
    got.sum().backward();
    want.sum().backward();
    assert.ok(w.grad!.sub(wq.grad!).abs().max().item() < 1e-4);
    assert.ok(w.grad!.abs().sum().item() > 0);
  });
});

test('ranges move by the momentum in training passes and stay put in eval passes; sigmoid gates are rounded too', () => {
  const obs = new FakeQuantObservers(0.5);
  const w = tensor([[1]]).float();
  tidy(() => {
    const col = (v: number[]): Tensor => tensor(v).float().reshape([v.length, 1]);
    const linear = (x: Tensor): number[] => Array.from(fakeQuant(obs, () => F.linear(x, w)).toTypedArray() as Float32Array);
    assert.deepEqual(noGrad(() => linear(col([0, 2]))), [0, 2]);   // first sight sets the range [0, 2], even in eval
    assert.deepEqual(noGrad(() => linear(col([0, 10]))), [0, 2]);  // eval: the range stays, 10 is clamped to 2
    const x = col([0, 10]);
    x.requiresGrad = true;
    linear(x);                                                       // a recording pass: halfway to [0, 10]
    assert.deepEqual(noGrad(() => linear(col([0, 10]))), [0, 6]);
    // a sigmoid's output is rounded on the grid of its own range
    const g = noGrad(() => fakeQuant(obs, () => F.sigmoid(col([-1, 0, 1]))).toTypedArray() as Float32Array);
    const q = uint8Params(1 / (1 + Math.E), 1 / (1 + Math.exp(-1)));
    for (const v of g) assert.ok(Math.abs(v / q.scale - Math.round(v / q.scale)) < 1e-3, `${v} is off the grid`);
    assert.ok(Math.abs(g[1] - 0.5) < q.scale);
    assert.equal(obs.size, 2);
  });
});

test('convkit train --qat from a trained run, then convkit quantize: ONNX Runtime int8 agrees with the fake-quantized model', async () => {
  const base = path.join(dir, 'base');
  const qat = path.join(dir, 'qat');
  const common = ['--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '32', '--warmup-epochs', '0', '--channels-last', 'off', '--epochs', '1', '--limit-test', '64', '--quiet'];
  const t1 = cli('train', ...common, '--bf16', 'off', '--limit-train', '3200', '--out-dir', base);
  assert.equal(t1.status, 0, String(t1.stderr));
  const t2 = cli('train', ...common, '--qat', '--init', path.join(base, 'model.safetensors'), '--lr', '0.01', '--limit-train', '1600', '--out-dir', qat);
  assert.equal(t2.status, 0, String(t2.stderr));
  assert.equal(JSON.parse(fs.readFileSync(path.join(qat, 'recipe.json'), 'utf8')).qat, true);
  const int8 = path.join(dir, 'qat.int8.onnx');
  const q = cli('quantize', qat, '--calib', 'fashion-mnist', '--calib-size', '256', '-o', int8, '--import', TINY, '--threads', '1');
  assert.equal(q.status, 0, String(q.stderr));

  // the fine-tuned model under fake quantization (ranges observed on training images) against the int8 file
  const floatFile = path.join(dir, 'qat.onnx');
  assert.equal(cli('export', qat, '-o', floatFile, '--import', TINY).status, 0);
  const train = await loadCalibrationImages(loadFloatGraph(floatFile), 'fashion-mnist', 256, { split: 'train', batchSize: 64 });
  const images = await loadCalibrationImages(loadFloatGraph(floatFile), 'fashion-mnist', 300, { split: 'test', batchSize: 100 });
  const model = createModel('tiny_cnn', { numClasses: 10, inChannels: 1 }) as unknown as Module<[Tensor], Tensor>;
  loadModelWeights(model, path.join(qat, 'model.safetensors'));
  model.eval();
  const obs = new FakeQuantObservers(1);
  const batch = (b: { data: Float32Array; dims: number[] }): Tensor => tensor(b.data).reshape(b.dims);
  // momentum 1 in recording passes: each range is the last batch's; the calibration takes the max over all, as minmax
  noGrad(() => tidy(() => { for (const b of train) fakeQuant(obs, () => model.call(batch(b))); }));
  const fq = noGrad(() => images.map((b) => tidy(() => Float32Array.from(fakeQuant(obs, () => model.call(batch(b))).toTypedArray() as Float32Array))));
  const s = await ort.InferenceSession.create(fs.readFileSync(int8), { intraOpNumThreads: 1 });
  const got: Float32Array[] = [];
  for (const b of images) got.push((await s.run({ input: new ort.Tensor('float32', b.data, b.dims) })).logits.data as Float32Array);
  await s.release();
  const { agreement } = compareLogits(fq, got, 10);
  assert.ok(agreement >= 0.95, `top-1 agreement of fake-quantized and int8: ${agreement}`);
});

test('--qat with --bf16 on is refused before anything is written', () => {
  const out = path.join(dir, 'bad');
  const r = cli('train', '--model', 'tiny_cnn', '--import', TINY, '--qat', '--bf16', 'on', '--epochs', '1', '--limit-train', '64', '--out-dir', out, '--quiet');
  assert.notEqual(r.status, 0);
  assert.match(String(r.stderr), /qat .*bf16/);
  assert.equal(fs.existsSync(path.join(out, 'recipe.json')), false);
});
