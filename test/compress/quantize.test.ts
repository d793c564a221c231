// convkit quantize end to end on a small CNN trained here on real Fashion-MNIST for 200 steps:
// the QDQ file passes onnx.checker, ONNX Runtime fuses it into its integer kernels, int8 and
// float agree on real test images, metadata and the layer record are kept, the skip rules and
// the sensitivity scan leave the right layers in float, and bad input fails with nothing written.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import '../train/tiny_model.js';
import { FASHION_MNIST_CLASSES } from '../../src/io/index.js';
import { readModelInfo, type Graph } from '../../src/export/index.js';
import {
  calibrate, compareLogits, loadCalibrationImages, loadFloatGraph, quantizeModel, readOnnxGraph, runtimeOps, type CalibMethod, type CalibrationBatch,
} from '../../src/compress/index.js';
import { PYTHON } from '../helpers/oracle.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-quantize-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const env = { ...process.env, CONVKIT_NUM_THREADS: '1' };
const run = path.join(dir, 'run');
const floatFile = path.join(dir, 'tiny.onnx');
const int8File = path.join(dir, 'tiny.int8.onnx');
const cli = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env });

before(() => {
  // 200 steps of 32 images: a trained model, small enough to train in seconds
  const train = cli('train', '--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '32', '--warmup-epochs', '0', '--bf16', 'off',
    '--channels-last', 'off', '--epochs', '1', '--limit-train', '6400', '--limit-test', '64', '--out-dir', run, '--quiet');
  assert.equal(train.status, 0, String(train.stderr));
  const ex = cli('export', run, '-o', floatFile, '--import', TINY);
  assert.equal(ex.status, 0, String(ex.stderr));
});

async function logits(file: string, batches: CalibrationBatch[]): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(fs.readFileSync(file), { intraOpNumThreads: 1 });
  try {
    const out: Float32Array[] = [];
    for (const b of batches) out.push((await s.run({ input: new ort.Tensor('float32', b.data, b.dims) })).logits.data as Float32Array);
    return out;
  } finally {
    await s.release();
  }
}

test('convkit quantize: a checked QDQ file that ORT runs on int8 kernels, close to float on real test images, metadata kept', async () => {
  const r = cli('quantize', run, '--calib', 'fashion-mnist', '--calib-size', '256', '-o', int8File, '--import', TINY, '--threads', '1');
  assert.equal(r.status, 0, String(r.stderr));
  assert.match(String(r.stdout), /wrote .*tiny\.int8\.onnx: 3 int8 layers; minmax on 256 fashion-mnist images/);
  const check = spawnSync(PYTHON, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', int8File], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);

  const bytes = fs.readFileSync(int8File);
  const info = readModelInfo(bytes);
  const floatInfo = readModelInfo(fs.readFileSync(floatFile));
  // every float metadata entry is kept as it was
  for (const k of ['class_names', 'input_size', 'mean', 'std', 'resize', 'crop', 'convkit_model']) assert.equal(info.metadata[k], floatInfo.metadata[k], k);
  assert.deepEqual(JSON.parse(info.metadata.class_names), FASHION_MNIST_CLASSES);
  const rec = JSON.parse(info.metadata['convkit.quantized']) as { layers: string[]; float: unknown[]; method: string; calibration: { images: number } };
  assert.deepEqual(rec.layers, ['conv1', 'conv2', 'fc']);
  assert.deepEqual(rec.float, []);
  assert.equal(rec.calibration.images, 256);
  // ReLUs fold into the uint8 outputs; ORT fuses every weighted layer into an integer kernel
  assert.equal(info.ops.Relu, undefined);
  assert.equal(info.ops.QuantizeLinear > 0 && info.ops.DequantizeLinear > 0, true);
  const kernels = await runtimeOps(bytes);
  assert.equal(kernels.QLinearConv, 2, JSON.stringify(kernels));
  assert.equal(kernels.QGemm, 1, JSON.stringify(kernels));
  assert.equal(kernels.Conv, undefined);

  // per-channel weights and int32 biases at input scale x weight scale
  const g = readOnnxGraph(int8File, bytes).graph;
  const conv = g.nodes.find((n) => n.op === 'Conv')!;
  const dqOf = (t: string) => g.nodes.find((n) => n.outputs[0] === t)!;
  const wDq = dqOf(conv.inputs[1]);
  const w = g.initializers.get(wDq.inputs[0])!;
  assert.equal(w.dtype, 'int8');
  assert.deepEqual(w.dims, [16, 1, 3, 3]);
  assert.equal(wDq.attrs.axis, 0);
  const wScale = g.initializers.get(wDq.inputs[1])!.data as Float32Array;
  assert.equal(wScale.length, 16);
  // symmetric: each channel's largest |q| is 127
  for (let c = 0; c < 16; c++) assert.equal(Math.max(...Array.from((w.data as Int8Array).subarray(c * 9, c * 9 + 9), Math.abs)), 127);
  const bDq = dqOf(conv.inputs[2]);
  assert.equal(g.initializers.get(bDq.inputs[0])!.dtype, 'int32');
  const bScale = g.initializers.get(bDq.inputs[1])!.data as Float32Array;
  const xDq = dqOf(conv.inputs[0]);
  const xScale = (g.initializers.get(xDq.inputs[1])!.data as Float32Array)[0];
  for (let c = 0; c < 16; c++) assert.ok(Math.abs(bScale[c] - xScale * wScale[c]) <= 1e-6 * bScale[c]);

  // 500 real test images: int8 and float agree
  const src = loadFloatGraph(floatFile);
  const images = await loadCalibrationImages(src, 'fashion-mnist', 500, { split: 'test', batchSize: 100 });
  const ref = await logits(floatFile, images);
  const got = await logits(int8File, images);
  const { relError, agreement } = compareLogits(ref, got, 10);
  assert.ok(agreement >= 0.97, `top-1 agreement ${agreement}`);
  assert.ok(relError < 0.01, `relative logit error ${relError}`);

  // onnxruntime-web (the browser page's engine; its WebAssembly build runs in Node too) gives the same logits
  const web = await import('onnxruntime-web');
  web.env.wasm.numThreads = 1;
  const ws = await web.InferenceSession.create(bytes);
  try {
    const r = await ws.run({ input: new web.Tensor('float32', images[0].data, images[0].dims) });
    const a = r.logits.data as Float32Array;
    assert.ok(a.every((v, i) => Math.abs(v - got[0][i]) <= 1e-5), 'onnxruntime-web and onnxruntime-node differ');
  } finally {
    await ws.release();
  }

  // convkit eval runs it as any .onnx
  const ev = cli('eval', int8File, 'fashion-mnist', '--limit', '200');
  assert.equal(ev.status, 0, String(ev.stderr));
  assert.match(String(ev.stdout), /top-1 \d+\.\d+%/);
});

test('from a float .onnx: entropy ranges, --skip first,last, and --report', () => {
  const out = path.join(dir, 'skip.int8.onnx');
  const r = cli('quantize', floatFile, '--calib', 'fashion-mnist', '--calib-size', '128', '--method', 'entropy', '--skip', 'first,last', '-o', out, '--json');
  assert.equal(r.status, 0, String(r.stderr));
  const j = JSON.parse(String(r.stdout)) as { quantized: string[]; float: { name: string; reason: string }[]; method: string };
  assert.equal(j.method, 'entropy');
  assert.deepEqual(j.quantized, ['conv2']);
  assert.deepEqual(j.float.map((l) => [l.name, l.reason]), [['conv1', 'first'], ['fc', 'last']]);
  const rep = cli('quantize', '--report', out);
  assert.equal(rep.status, 0, String(rep.stderr));
  assert.match(String(rep.stdout), /int8 +conv2\n +float +conv1 \(first\)\n +float +fc \(last\)/);
  assert.match(String(rep.stdout), /kernels ONNX Runtime runs: .*QLinearConv 1/);
  // convkit summary of an ONNX file says the same
  const sum = cli('summary', out);
  assert.equal(sum.status, 0, String(sum.stderr));
  assert.equal(String(sum.stdout), String(rep.stdout));
  // a layer named on --skip
  const named = cli('quantize', floatFile, '--calib', 'fashion-mnist', '--calib-size', '64', '--skip', 'conv2', '-o', out, '--json');
  assert.equal(named.status, 0, String(named.stderr));
  assert.deepEqual((JSON.parse(String(named.stdout)) as { float: { name: string }[] }).float.map((l) => l.name), ['conv2']);
});

test('every calibration method gives ranges that hold 0; the sensitivity scan keeps the worst layer in float', async () => {
  const src = loadFloatGraph(floatFile);
  const images = await loadCalibrationImages(src, 'fashion-mnist', 64);
  const ranges: Record<string, Map<string, { lo: number; hi: number }>> = {};
  for (const m of ['minmax', 'percentile', 'mse', 'entropy'] as CalibMethod[]) {
    ranges[m] = await calibrate(src, images, m, { threads: 1 });
    for (const [, r] of ranges[m]) assert.ok(r.lo <= 0 && r.hi >= 0 && Number.isFinite(r.lo) && Number.isFinite(r.hi));
  }
  // clipping methods never widen minmax's range
  for (const m of ['percentile', 'mse', 'entropy']) {
    for (const [t, r] of ranges[m]) assert.ok(r.hi <= ranges.minmax.get(t)!.hi + 1e-6 && r.lo >= ranges.minmax.get(t)!.lo - 1e-6, `${m} ${t}`);
  }
  // a target no model reaches spends the whole budget of one float layer, the worst one
  const q = await quantizeModel(floatFile, { calib: 'fashion-mnist', calibSize: 64, threads: 1, sensitivity: { held: 64, maxFloat: 1, targetAgreement: 1.01 } });
  assert.equal(q.sensitivity!.length, 3);
  const worst = [...q.sensitivity!].sort((a, b) => b.relError - a.relError)[0];
  assert.ok(worst.keptFloat);
  assert.deepEqual(q.float.map((l) => [l.name, l.reason]), [[worst.layer, 'sensitivity']]);
  assert.equal(q.quantized.length, 2);
  assert.ok(q.heldAgreement !== null && q.heldAgreement > 0.9);
});

test('bad input: clear errors, nothing written, an existing file untouched', async () => {
  const help = cli('quantize', '--help');
  assert.equal(help.status, 0);
  assert.match(String(help.stdout), /^usage: convkit quantize <checkpoint \| run folder \| model\.onnx> --calib <dataset>/);
  assert.match(String(cli('--help').stdout), /^  quantize /m);
  const out = path.join(dir, 'bad.onnx');
  fs.writeFileSync(out, 'old');
  const fails = (args: string[], code: number, pattern: RegExp): void => {
    const r = cli('quantize', ...args);
    assert.equal(r.status, code, `${args.join(' ')}: ${String(r.stderr)}`);
    assert.match(String(r.stderr), pattern);
    assert.equal(fs.readFileSync(out, 'utf8'), 'old');
  };
  fails([floatFile, '--calib', 'fashion-mnist', '--method', 'kl', '-o', out], 2, /--method must be one of minmax, percentile, mse, entropy, got 'kl'/);
  fails([floatFile, '-o', out], 2, /--calib <dataset>/);
  fails([floatFile, '--calib', 'imagenet', '-o', out], 1, /unknown dataset 'imagenet'/);
  fails([floatFile, '--calib', 'fashion-mnist', '--skip', 'nolayer', '-o', out], 1, /--skip: 'nolayer' is neither a rule \(first, last, depthwise, se\) nor a layer/);
  fails([int8File, '--calib', 'fashion-mnist', '-o', out], 1, /already quantized/);
  fails([run, '--model', 'resnet18', '--calib', 'fashion-mnist', '-o', out], 1, /error: /);
  const junk = path.join(dir, 'junk.onnx');
  fs.writeFileSync(junk, 'not a model at all');
  fails([junk, '--calib', 'fashion-mnist', '-o', out], 1, /junk\.onnx is not an ONNX model/);
  fails([path.join(dir, 'missing'), '--calib', 'fashion-mnist', '-o', out], 1, /missing: no such file or folder/);

  // calibration data of the wrong shape or channel count, a bad method, through the API
  const src = loadFloatGraph(floatFile);
  await assert.rejects(calibrate(src, [{ data: new Float32Array(2 * 3 * 28 * 28), dims: [2, 3, 28, 28] }], 'minmax'),
    /calibration batch 0 has shape \[2, 3, 28, 28\] but the model's input 'input' is \[batch, 1, 28, 28\]/);
  await assert.rejects(calibrate(src, [{ data: new Float32Array(28 * 28), dims: [1, 28, 28] }], 'minmax'), /calibration batch 0 has shape \[1, 28, 28\]/);
  await assert.rejects(calibrate(src, [], 'minmax'), /no calibration images/);
  await assert.rejects(calibrate(src, [{ data: new Float32Array(784), dims: [1, 1, 28, 28] }], 'kl' as CalibMethod), /method must be one of minmax, percentile, mse, entropy, got 'kl'/);
  const rgb = { ...src, metadata: src.metadata.map(([k, v]) => [k, k === 'input_size' ? '[3,28,28]' : v] as [string, string]) };
  await assert.rejects(loadCalibrationImages(rgb, 'fashion-mnist', 8), /takes 3-channel images but fashion-mnist has 1-channel images/);
  await assert.rejects(quantizeModel(floatFile, { calib: 'fashion-mnist', method: 'kl' as CalibMethod, file: out }), /method must be one of/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'old');
});

test('EfficientNet-B0 and ResNet-18: the skip rules find depthwise and SE layers, and ORT runs every layer on integer kernels', async () => {
  const { manualSeed, randn } = await import('../../src/engine/index.js');
  const { createModel } = await import('../../src/models/index.js');
  const { traceGraph } = await import('../../src/export/index.js');
  const { skipsFor, toQdq, weightedNodes } = await import('../../src/compress/index.js');
  const { encodeModel } = await import('../../src/export/index.js');
  for (const name of ['efficientnet_b0', 'resnet18']) {
    manualSeed(0);
    const model = createModel(name, { numClasses: 10 });
    // 64 px: at 32 the last stages' maps are 1x1 and their SE pooling is no op at all
    const x = randn([1, 3, 64, 64]);
    const graph = traceGraph(model as never, x);
    model.dispose();
    x.dispose();
    const src = { graph, opset: 17, metadata: [] as [string, string][], label: name };
    const batches: CalibrationBatch[] = [0, 1].map((i) => ({ data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, k) => Math.sin(k * 0.01 + i)), dims: [2, 3, 64, 64] }));
    const ranges = await calibrate(src, batches, 'minmax', { threads: 1 });
    const q = toQdq(graph, ranges);
    assert.equal(q.quantized.length, weightedNodes(graph).length);
    const kernels = await runtimeOps(encodeModel(q.graph, { opset: 17, producerVersion: 'test', metadata: [] }));
    assert.equal(kernels.Conv, undefined, `${name}: ${JSON.stringify(kernels)}`);
    assert.equal(kernels.Gemm, undefined, `${name}: ${JSON.stringify(kernels)}`);
    assert.equal(kernels.QGemm, 1);
    if (name === 'resnet18') {
      assert.equal(kernels.QLinearConv, 20);
      assert.equal(kernels.QLinearAdd, 8);
      assert.equal(skipsFor(graph, ['depthwise', 'se']).size, 0);
      continue;
    }
    // B0: 16 MBConv blocks, each with an SE (two 1x1 convolutions and the gating Mul); the first block has no expansion, all 16 a depthwise conv
    const dw = skipsFor(graph, ['depthwise']);
    assert.equal(dw.size, 16);
    const se = [...skipsFor(graph, ['se']).keys()].map((n) => graph.nodes.find((m) => m.name === n)!);
    assert.equal(se.filter((n) => n.op === 'Conv').length, 32);
    assert.equal(se.filter((n) => n.op === 'Mul').length, 16);
    assert.ok(se.filter((n) => n.op === 'Conv').every((n) => /\.fc[12]$/.test(n.scope)), se.map((n) => n.scope).join(' '));
    assert.equal(kernels.QLinearConv, 81);
    assert.equal(kernels.QLinearSigmoid, 65);
    // with depthwise and SE left float, the rest is still integer and the float ones are listed
    const part = toQdq(graph, ranges, { skip: skipsFor(graph, ['depthwise', 'se']) });
    assert.equal(part.float.length, 16 + 32);
    assert.deepEqual(new Set(part.float.map((l) => l.reason)), new Set(['depthwise', 'se']));
  }
});

test('toQdq on a hand-built graph: a ReLU inside folds into the uint8 output, a ReLU that is the model output stays', async () => {
  const { toQdq } = await import('../../src/compress/index.js');
  const { encodeModel } = await import('../../src/export/index.js');
  const w = (seed: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 1.7));
  const graph: Graph = {
    name: 'g', inputs: [{ name: 'x', dtype: 'float32' as const, shape: ['batch', 1, 4, 4] }], outputs: [{ name: 'y', dtype: 'float32' as const, shape: ['batch', 2, 4, 4] }],
    nodes: [
      { op: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['a'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }, scope: 'conv1' },
      { op: 'Relu', name: 'r1', inputs: ['a'], outputs: ['ra'], attrs: {}, scope: 'relu' },
      { op: 'Conv', name: 'c2', inputs: ['ra', 'w2', 'b2'], outputs: ['b'], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }, scope: 'conv2' },
      { op: 'Relu', name: 'r2', inputs: ['b'], outputs: ['y'], attrs: {}, scope: 'relu' },
    ],
    initializers: new Map([
      ['w1', { dtype: 'float32' as const, dims: [2, 1, 3, 3], data: w(1, 18) }], ['b1', { dtype: 'float32' as const, dims: [2], data: Float32Array.of(0.1, -0.2) }],
      ['w2', { dtype: 'float32' as const, dims: [2, 2, 3, 3], data: w(2, 36) }], ['b2', { dtype: 'float32' as const, dims: [2], data: Float32Array.of(-0.3, 0.05) }],
    ]),
    valueInfo: new Map(),
  };
  const src = { graph, opset: 17, metadata: [] as [string, string][], label: 'hand' };
  const x: CalibrationBatch = { data: Float32Array.from({ length: 3 * 16 }, (_, i) => Math.cos(i * 0.9)), dims: [3, 1, 4, 4] };
  const ranges = await calibrate(src, [x], 'minmax', { threads: 1 });
  const q = toQdq(graph, ranges);
  assert.deepEqual(q.graph.nodes.filter((n) => n.op === 'Relu').map((n) => n.name), ['r2']);
  // the first conv now writes the ReLU's output name, quantized with zero point 0
  const c1 = q.graph.nodes.find((n) => n.name === 'c1')!;
  assert.deepEqual(c1.outputs, ['ra']);
  assert.equal((q.graph.initializers.get('ra_zero_point')!.data as Uint8Array)[0], 0);
  // the input graph is left as it was
  assert.deepEqual(graph.nodes.map((n) => n.op), ['Conv', 'Relu', 'Conv', 'Relu']);
  const run = async (g: Graph): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(encodeModel(g, { opset: 17, producerVersion: 't', metadata: [] }), { intraOpNumThreads: 1 });
    try {
      return (await s.run({ x: new ort.Tensor('float32', x.data, x.dims) })).y.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  const ref = await run(graph);
  const got = await run(q.graph);
  assert.ok(got.every((v) => v >= 0), 'the output ReLU was lost');
  const scale = Math.max(...ref.map(Math.abs));
  assert.ok(got.every((v, i) => Math.abs(v - ref[i]) <= 0.05 * scale), 'int8 far from float');
});
