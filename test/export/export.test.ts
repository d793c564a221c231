// The exporter's graph and its guarantees: node counts no greater than torch.onnx.export's for
// torchvision models, BatchNorm folded (and the folded numbers right), dead nodes and repeated
// constants gone, a user's own nn model, a fixed batch, metadata, errors that name the op and the
// module (and leave no file), training flags restored, and `convkit export` end to end.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { F, manualSeed, noGrad, randn, tidy, zeros, type Tensor } from '../../src/engine/index.js';
import { BatchNorm2d, Conv2d, GroupNorm, Linear, Module, ReLU, Sequential, Flatten, AdaptiveAvgPool2d } from '../../src/nn/index.js';
import { createModel } from '../../src/models/index.js';
import { FASHION_MNIST_CLASSES, writeSafetensors } from '../../src/io/index.js';
import { ExportError, exportOnnx, readModelInfo, traceGraph } from '../../src/export/index.js';
import { loadExportSource } from '../../src/export/source.js';
import { PYTHON } from '../helpers/oracle.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-export-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const HELPER = fileURLToPath(new URL('../../../test/helpers/torch_onnx_counts.py', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

type M = Module<never[], unknown>;
const asM = (m: unknown): M => m as M;

async function runOrt(bytes: Uint8Array, x: Tensor): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) });
  const t = out[s.outputNames[0]];
  await s.release();
  return { data: t.data as Float32Array, dims: t.dims };
}

function maxRelErr(got: Float32Array, ref: Float32Array): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    worst = Math.max(worst, Math.abs(got[i] - ref[i]));
  }
  return worst / scale;
}

test('node counts are no greater than torch.onnx.export of the same torchvision models', () => {
  const names = ['resnet18', 'mobilenet_v2', 'efficientnet_b0', 'inception_v3'];
  const size = 80;
  const r = spawnSync(PYTHON, [HELPER, String(size), '17', ...names], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const torch = JSON.parse(r.stdout) as Record<string, { nodes: number; ops: Record<string, number> }>;
  for (const name of names) {
    manualSeed(0);
    const model = createModel(name);
    const x = randn([1, 3, size, size]);
    const g = traceGraph(asM(model), x);
    model.dispose();
    x.dispose();
    const ours = g.nodes.length;
    assert.ok(ours <= torch[name].nodes, `${name}: convkit ${ours} nodes, torch.onnx.export ${torch[name].nodes}`);
    // no more compute nodes either: torch's extra are Identity and Constant (and for Inception,
    // Pad before AveragePool and nested Concats, which convkit writes as pads and one Concat)
    const compute = torch[name].nodes - (torch[name].ops.Identity ?? 0) - (torch[name].ops.Constant ?? 0);
    assert.ok(ours <= compute, `${name}: convkit ${ours}, torch ${JSON.stringify(torch[name].ops)}`);
    if (name !== 'inception_v3') assert.equal(ours, compute, `${name}: ${JSON.stringify(torch[name].ops)}`);
  }
});

class ConvBnRelu extends Module {
  conv = new Conv2d(3, 8, 3, { padding: 1, bias: true });
  bn = new BatchNorm2d(8);
  relu = new ReLU();
  forward(x: Tensor): Tensor {
    return this.relu.call(this.bn.call(this.conv.call(x)));
  }
}

test('BatchNorm is folded into the convolution before it, with the right numbers', async () => {
  manualSeed(1);
  const m = new ConvBnRelu().eval();
  noGrad(() => {
    m.bn.buffer('running_mean')!.normal_(0, 0.5);
    m.bn.buffer('running_var')!.uniform_(0.2, 3);
    m.bn.weight!.uniform_(-2, 2);
    m.bn.bias!.normal_(0, 1);
  });
  const x = randn([2, 3, 10, 10]);
  const r = exportOnnx(asM(m), x);
  assert.deepEqual(r.ops, { Conv: 1, Relu: 1 });
  assert.deepEqual([...r.graph.initializers.keys()].sort(), ['conv.bias', 'conv.weight']);
  const ref = noGrad(() => tidy(() => m.call(x).toTypedArray() as Float32Array));
  const got = await runOrt(r.bytes, x);
  assert.ok(maxRelErr(got.data, ref) < 1e-5);
});

class Wasteful extends Module {
  fc = new Linear(4, 4);
  forward(x: Tensor): Tensor {
    x.sum(); // dead: never used
    const a = x.mul(2.5).add(1);
    const b = this.fc.call(a).mul(2.5).add(1); // the same scalars again
    return F.dropout(b, 0.5, this.training).contiguous();
  }
}

test('dead nodes, identities and repeated constants are removed', async () => {
  const m = new Wasteful();
  const x = randn([3, 4]);
  const r = exportOnnx(asM(m), x);
  assert.deepEqual(r.ops, { Mul: 2, Add: 2, Gemm: 1 });
  const scalars = [...r.graph.initializers.values()].filter((i) => i.dims.length === 0);
  assert.equal(scalars.length, 2, 'one 2.5 and one 1, shared');
  assert.equal(m.training, true, 'the training flag is restored');
  const ref = noGrad(() => tidy(() => { m.eval(); const y = m.call(x).toTypedArray() as Float32Array; m.train(); return y; }));
  assert.ok(maxRelErr((await runOrt(r.bytes, x)).data, ref) < 1e-6);
});

test("a user's own nn model exports, batch dynamic by default or fixed on request", async () => {
  manualSeed(2);
  const m = new Sequential(new Conv2d(1, 4, 3), new BatchNorm2d(4), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3)).eval();
  const dyn = exportOnnx(asM(m), randn([1, 1, 8, 8]));
  assert.deepEqual(dyn.graph.inputs[0].shape, ['batch', 1, 8, 8]);
  assert.deepEqual(dyn.graph.outputs[0].shape, ['batch', 3]);
  // every traced tensor's shape is in the IR, the batch symbolic
  const shapeOf = (op: string): unknown => dyn.graph.valueInfo.get(dyn.graph.nodes.find((n) => n.op === op)!.outputs[0])?.shape;
  assert.deepEqual(shapeOf('Conv'), ['batch', 4, 6, 6]);
  assert.deepEqual(shapeOf('GlobalAveragePool'), ['batch', 4, 1, 1]);
  assert.deepEqual(shapeOf('Flatten'), ['batch', 4]);
  for (const n of [1, 5]) {
    const x = randn([n, 1, 8, 8]);
    const ref = noGrad(() => tidy(() => m.call(x).toTypedArray() as Float32Array));
    const got = await runOrt(dyn.bytes, x);
    assert.deepEqual(got.dims, [n, 3]);
    assert.ok(maxRelErr(got.data, ref) < 1e-5);
  }
  const fixed = exportOnnx(asM(m), randn([1, 1, 8, 8]), { batch: 4 });
  assert.deepEqual(fixed.graph.inputs[0].shape, [4, 1, 8, 8]);
  assert.equal((await runOrt(fixed.bytes, randn([4, 1, 8, 8]))).dims[0], 4);
});

class Upsample extends Module {
  conv = new Conv2d(2, 2, 3, { padding: 1 });
  forward(x: Tensor): Tensor {
    const y = this.conv.call(x);
    return F.interpolate(y, [12, 8], { mode: 'nearest' }).add(F.interpolate(y, [12, 8], { mode: 'bilinear' }))
      .add(F.interpolate(y, [12, 8], { mode: 'bilinear', alignCorners: true })).add(F.interpolate(y, [12, 8], { mode: 'bicubic' }));
  }
}

test('resizing (nearest, bilinear, bicubic) exports as Resize with PyTorch\'s coordinates', async () => {
  manualSeed(4);
  const m = new Upsample();
  const r = exportOnnx(asM(m), randn([1, 2, 6, 4]));
  assert.equal(r.ops.Resize, 4);
  const x = randn([2, 2, 6, 4]);
  const ref = noGrad(() => tidy(() => m.call(x).toTypedArray() as Float32Array));
  assert.ok(maxRelErr((await runOrt(r.bytes, x)).data, ref) < 1e-5);
});

class Body extends Module {
  norm = new GroupNorm(2, 4);
  forward(x: Tensor): Tensor {
    return this.norm.call(x);
  }
}
class Cumulative extends Module {
  forward(x: Tensor): Tensor {
    return x.cumsum(1);
  }
}
class DataDependent extends Module {
  forward(x: Tensor): Tensor {
    return x.sum().item() > 0 ? x.relu() : x.neg();
  }
}

class PerSample extends Module {
  fc = new Linear(4, 2);
  forward(x: Tensor): Tensor {
    return this.fc.call(x).add(zeros([x.size(0), 1])); // a tensor sized by the batch, made as a number
  }
}

test('a forward that turns the batch size into a number fails with a dynamic batch, and exports with a fixed one', async () => {
  const m = new PerSample();
  assert.throws(() => exportOnnx(asM(m), randn([1, 4])), (e: Error) => e instanceof ExportError && /'Add' in module '<top>'.*changes with the batch size.*fixed batch/.test(e.message));
  const r = exportOnnx(asM(m), randn([1, 4]), { batch: 3 });
  const x = randn([3, 4]);
  const ref = noGrad(() => tidy(() => m.call(x).toTypedArray() as Float32Array));
  assert.ok(maxRelErr((await runOrt(r.bytes, x)).data, ref) < 1e-6);
});

test('an op with no ONNX mapping fails naming the op and the module path, and writes no file', () => {
  const file = path.join(dir, 'bad.onnx');
  const cases: [Module, RegExp][] = [
    [new Sequential(new Conv2d(3, 4, 1), new Body()), /engine op 'groupNorm' in module '1\.norm'.*no ONNX mapping/],
    [new Sequential(new ReLU(), new Cumulative()), /engine op 'cumsum' in module '1'.*no export mapping/],
    [new Sequential(new DataDependent()), /engine op 'item' in module '0'.*data-dependent/],
  ];
  for (const [m, re] of cases) {
    assert.throws(() => exportOnnx(asM(m), randn([1, 3, 4, 4]), { file }), (e: Error) => e instanceof ExportError && re.test(e.message));
    assert.equal(fs.existsSync(file), false);
  }
  // a failed export leaves an existing file whole
  fs.writeFileSync(file, 'previous');
  assert.throws(() => exportOnnx(asM(new Sequential(new Conv2d(3, 4, 1), new Body())), randn([1, 3, 4, 4]), { file }), ExportError);
  assert.equal(fs.readFileSync(file, 'utf8'), 'previous');
  assert.deepEqual(fs.readdirSync(dir), ['bad.onnx']);
});

test('convkit export: a run folder with its classes and normalisation in the metadata, checked by onnx.checker', () => {
  manualSeed(3);
  const model = createModel('resnet20', { numClasses: 3, inChannels: 1 });
  const run = path.join(dir, 'run');
  fs.mkdirSync(run);
  const classes = ['cat', 'dog', 'bird'];
  writeSafetensors(path.join(run, 'model.safetensors'), model.stateDict(), {
    convkit_model: 'resnet20', convkit_model_options: JSON.stringify({ numClasses: 3, inChannels: 1 }),
    convkit_classes: JSON.stringify(classes), convkit_normalization: JSON.stringify({ mean: [0.5], std: [0.25] }), convkit_dataset: 'fashion-mnist',
  });
  const run36 = path.join(dir, 'run36');
  fs.mkdirSync(run36);
  writeSafetensors(path.join(run36, 'model.safetensors'), model.stateDict(), {
    convkit_model: 'resnet20', convkit_model_options: JSON.stringify({ numClasses: 3, inChannels: 1 }), convkit_dataset: 'fashion-mnist', convkit_image_size: '[36,36]',
  });
  model.dispose();
  const out = path.join(dir, 'run.onnx');
  const r = spawnSync(process.execPath, [MAIN, 'export', run, '-o', out, '--json'], { encoding: 'utf8', env: { ...process.env, CONVKIT_NUM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { nodes: number; input: unknown[] };
  assert.deepEqual(summary.input, ['batch', 1, 28, 28]);
  const info = readModelInfo(fs.readFileSync(out));
  assert.equal(info.opset, 17);
  assert.equal(info.nodes, summary.nodes);
  const meta = info.metadata;
  assert.equal(meta.convkit_model, 'resnet20');
  assert.deepEqual(JSON.parse(meta.class_names), classes);
  assert.deepEqual(JSON.parse(meta.input_size), [1, 28, 28]);
  assert.deepEqual(JSON.parse(meta.mean), [0.5]);
  assert.deepEqual(JSON.parse(meta.std), [0.25]);
  assert.deepEqual(JSON.parse(meta.crop), [28, 28]);
  assert.equal(JSON.parse(meta.resize), 28);
  const check = spawnSync(PYTHON, ['-c', `import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)`, out], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  // a model trained at another size than its dataset's records it, and the export takes it
  const at36 = loadExportSource(path.join(run36, 'model.safetensors'));
  assert.deepEqual(at36.metadata.inputSize, [1, 36, 36]);
  at36.model.dispose();
  at36.example.dispose();
  // bad usage: exit 2; a failure: exit 1
  assert.equal(spawnSync(process.execPath, [MAIN, 'export', run], { encoding: 'utf8' }).status, 2);
  assert.equal(spawnSync(process.execPath, [MAIN, 'export', 'no_such_model', '-o', out], { encoding: 'utf8' }).status, 1);
  const help = spawnSync(process.execPath, [MAIN, 'export', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: convkit export/);
});

test('convkit export: a training checkpoint from convkit train, its EMA weights, the dataset\'s classes and size', () => {
  const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
  const run = path.join(dir, 'trained');
  const env = { ...process.env, CONVKIT_NUM_THREADS: '1' };
  const train = spawnSync(process.execPath, [MAIN, 'train', '--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '64',
    '--warmup-epochs', '0', '--bf16', 'off', '--channels-last', 'off', '--epochs', '1', '--limit-train', '256', '--limit-test', '64',
    '--out-dir', run, '--ema', '0.9', '--quiet'], { encoding: 'utf8', env });
  assert.equal(train.status, 0, train.stderr);
  const out = path.join(dir, 'trained.onnx');
  const r = spawnSync(process.execPath, [MAIN, 'export', path.join(run, 'last.safetensors'), '-o', out, '--import', TINY, '--ema', '--json'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { weights: string }).weights, path.join(run, 'last.safetensors'));
  const meta = readModelInfo(fs.readFileSync(out)).metadata;
  assert.equal(meta.convkit_model, 'tiny_cnn');
  assert.deepEqual(JSON.parse(meta.class_names), FASHION_MNIST_CLASSES);
  assert.deepEqual(JSON.parse(meta.input_size), [1, 28, 28]);
  assert.equal(JSON.parse(meta.mean).length, 1);
});
