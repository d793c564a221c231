// Issue 15's int8 goals. Speed: ResNet-50 and EfficientNet-B0 (seeded random weights) at 224 px,
// batch 1 and 8, convkit's int8 QDQ file against the same model's fp32 ONNX under ONNX Runtime
// (same threads, taking turns), and PyTorch's own int8 (FX graph mode, static, onednn: Debian's
// PyTorch has no fbgemm) against its fp32 as the anchor. Accuracy: the default Fashion-MNIST model
// and other trained runs (--ckpt) fp32 against int8 for each calibration method, on the test set;
// a run fine-tuned with --qat against the float model it started from. Where the time goes: ORT's profiler.
//   node dist-dev/bench/quantize.js [--steps 10] [--rounds 1] [--threads 2] [--models resnet50,efficientnet_b0]
//     [--batches 1,8] [--size 224] [--calib-size 64] [--engine onednn] [--ckpt run,... (default: runs/bench-default, trained first when missing)]
//     [--methods minmax,percentile,mse,entropy] [--limit N] [--json out.json]
import './preload.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { manualSeed, randn, setNumThreads } from '../src/engine/index.js';
import { createModel } from '../src/models/index.js';
import { exportOnnx, readModelInfo } from '../src/export/index.js';
import { loadFloatGraph, quantizeBatches, quantizeModel, runtimeOps, type CalibMethod, type CalibrationBatch } from '../src/compress/index.js';
import { evaluateOnnx } from '../src/deploy/index.js';
import { arg, emit, listArg, median, runPython, sideBySide } from './common.js';
import { stringArg } from './args.js';
import { defaultRun } from './train_cli.js';

const steps = arg('steps', 10), rounds = arg('rounds', 1), warmup = 3, threads = arg('threads', 2), size = arg('size', 224);
const calibSize = arg('calib-size', 64);
const names = listArg('models') ?? ['resnet50', 'efficientnet_b0'];
const batches = (listArg('batches') ?? ['1', '8']).map(Number);
const engine = stringArg('engine') ?? 'onednn';
// --no-accuracy: the speed tables only (the quick check: no default run to train)
const ckpts = process.argv.includes('--no-accuracy') ? [] : listArg('ckpt') ?? [defaultRun()];
const methods = (listArg('methods') ?? ['minmax', 'percentile', 'mse', 'entropy']) as CalibMethod[];
const limit = stringArg('limit') === undefined ? undefined : arg('limit', 0);
setNumThreads(threads);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-quantize-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** The fp32 export of a seeded random model and its int8 QDQ version (calibrated on random normal batches). */
async function files(name: string): Promise<{ fp32: Uint8Array; int8: Uint8Array; kernels: Record<string, number> }> {
  manualSeed(0);
  const model = createModel(name);
  const x = randn([1, 3, size, size]);
  const file = path.join(tmp, `${name}.onnx`);
  try {
    exportOnnx(model, x, { file, metadata: { modelName: name, inputSize: [3, size, size] } });
  } finally {
    x.dispose();
    model.dispose();
  }
  const src = loadFloatGraph(file);
  const calib: CalibrationBatch[] = [];
  for (let i = 0; i < calibSize; i += 8) {
    const n = Math.min(8, calibSize - i);
    const t = randn([n, 3, size, size]);
    calib.push({ data: Float32Array.from(t.toTypedArray() as Float32Array), dims: t.shape });
    t.dispose();
  }
  const q = await quantizeBatches(src, calib, [], { threads, calibLabel: 'random normal' });
  return { fp32: new Uint8Array(fs.readFileSync(file)), int8: q.bytes, kernels: await runtimeOps(q.bytes, threads) };
}

async function ortLatencies(bytes: Uint8Array, key: string): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const out: Record<string, number[]> = {};
  try {
    for (const batch of batches) {
      const x = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i)), [batch, 3, size, size]);
      const times: number[] = [];
      for (let i = 0; i < warmup + steps; i++) {
        const t0 = performance.now();
        await session.run({ [session.inputNames[0]]: x });
        if (i >= warmup) times.push(performance.now() - t0);
      }
      out[`${key}:${batch}`] = times;
    }
  } finally {
    await session.release();
  }
  return out;
}

const built: Record<string, Awaited<ReturnType<typeof files>>> = {};
for (const n of names) built[n] = await files(n);
const sides = await sideBySide(rounds,
  async () => {
    const r: Record<string, number[]> = {};
    for (const n of names) {
      Object.assign(r, await ortLatencies(built[n].fp32, `${n}:fp32`));
      Object.assign(r, await ortLatencies(built[n].int8, `${n}:int8`));
    }
    return r;
  },
  (alloc) => runPython<Record<string, number[]>>('quantize.py', [threads, steps, warmup, names.join(','), batches.join(','), size, engine], threads, alloc));

const rate = (runs: Record<string, number[]>[], key: string, batch: number): number => (1000 * batch) / median(runs.flatMap((r) => r[key]));
const speed: (string | number)[][] = [];
for (const n of names) {
  for (const b of batches) {
    const f = rate(sides.convkit, `${n}:fp32:${b}`, b), q = rate(sides.convkit, `${n}:int8:${b}`, b);
    const best = (mode: string): number => Math.max(...(['glibc', 'tcmalloc'] as const).map((a) => rate(sides.pytorch[a], `${n}:${b}:${mode}`, b)));
    const pf = best('fp32'), pq = best('int8');
    speed.push([n, `${b}`, f, q, q / f, pf, pq, pq / pf, q / pq]);
  }
}
const kernels = names.map((n) => [n, Object.entries(built[n].kernels).filter(([k]) => /^Q|Integer/.test(k) && k !== 'QuantizeLinear').map(([k, v]) => `${k} ${v}`).join(', '),
  Object.entries(built[n].kernels).filter(([k]) => ['Conv', 'Gemm', 'MatMul'].includes(k)).map(([k, v]) => `${k} ${v}`).join(', ') || 'none',
  (built[n].fp32.byteLength / 1e6).toFixed(1), (built[n].int8.byteLength / 1e6).toFixed(1)]);

// Where ONNX Runtime spends a run, by op kind (its profiler; ms per run), fp32 against int8: the
// gap to the 2x goal is in the kinds int8 does not speed up.
async function opProfile(bytes: Uint8Array, batch: number): Promise<Map<string, number>> {
  const prefix = path.join(tmp, `profile-${Math.random().toString(36).slice(2)}`);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, enableProfiling: true, profileFilePrefix: prefix });
  const runs = 5;
  try {
    const x = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i)), [batch, 3, size, size]);
    for (let i = 0; i < runs; i++) await session.run({ [session.inputNames[0]]: x });
  } finally {
    session.endProfiling();
    await session.release();
  }
  const file = fs.readdirSync(tmp).find((f) => path.join(tmp, f).startsWith(prefix))!;
  const events = JSON.parse(fs.readFileSync(path.join(tmp, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const ms = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    ms.set(e.args.op_name, (ms.get(e.args.op_name) ?? 0) + e.dur / 1000 / runs);
  }
  return ms;
}
const profileBatch = Math.max(...batches);
const profile: (string | number)[][] = [];
for (const n of names) {
  for (const [precision, bytes] of [['fp32', built[n].fp32], ['int8', built[n].int8]] as const) {
    const ms = await opProfile(bytes, profileBatch);
    const total = [...ms.values()].reduce((x, y) => x + y, 0);
    const top = [...ms].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([k, v]) => `${k} ${v.toFixed(1)} (${((100 * v) / total).toFixed(0)} %)`);
    profile.push([n, precision, total, top.join(', ')]);
  }
}

// Accuracy of trained runs, fp32 and int8 on the same test images. A run fine-tuned with --qat
// is compared with the float model it started from (its recipe's init).
const accuracy: (string | number)[][] = [];
for (const run of ckpts) {
  if (!fs.existsSync(run)) {
    console.error(`bench/quantize: ${run} not found: skipped in the accuracy table`);
    continue;
  }
  const recipe = JSON.parse(fs.readFileSync(path.join(run, 'recipe.json'), 'utf8')) as { qat?: boolean; init?: string | null };
  const qat = recipe.qat === true && typeof recipe.init === 'string';
  const base = await floatAccuracy(qat ? recipe.init! : run);
  const name = `${base.model} (${path.basename(run)})`;
  if (!qat) accuracy.push([name, 'fp32', '-', 100 * base.top1, 0, base.count]);
  for (const m of qat ? ['minmax' as CalibMethod] : methods) {
    const out = path.join(tmp, `int8.${m}.onnx`);
    const t0 = performance.now();
    const q = await quantizeModel(run, { calib: 'fashion-mnist', calibSize: 512, method: m, file: out, threads });
    const sec = (performance.now() - t0) / 1000;
    const ev = await evaluateOnnx(out, 'fashion-mnist', { limit, threads });
    accuracy.push([name, `${qat ? 'QAT + ' : ''}int8 ${m}`, `${q.quantized.length} int8, ${sec.toFixed(1)} s`, 100 * ev.result.top1, 100 * (ev.result.top1 - base.top1), ev.result.count]);
  }
}

/** The float model's test accuracy through its own ONNX export. */
async function floatAccuracy(weights: string): Promise<{ model: string; top1: number; count: number }> {
  const file = path.join(tmp, 'float.onnx');
  const src = (await import('../src/export/source.js')).loadExportSource(weights);
  try {
    exportOnnx(src.model, src.example, { file, metadata: src.metadata });
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
  const ev = await evaluateOnnx(file, 'fashion-mnist', { limit, threads });
  return { model: readModelInfo(fs.readFileSync(file)).metadata.convkit_model ?? '?', top1: ev.result.top1, count: ev.result.count };
}

emit('quantize', [
  {
    title: `int8 (convkit quantize, QDQ) vs fp32 under ONNX Runtime ${ort.env.versions.common}, and PyTorch 1.13's FX int8 (${engine}) vs its fp32 (best of glibc / tcmalloc); `
      + `images/s, ${size} px, ${threads} threads, median of ${steps} steps x ${rounds} rounds; random weights, ${calibSize} calibration images`,
    headers: ['model', 'batch', 'ORT fp32', 'ORT int8 (convkit)', 'int8 / fp32', 'PyTorch fp32', `PyTorch int8 (${engine})`, 'PyTorch int8 / fp32', 'convkit int8 / PyTorch int8'],
    rows: speed,
  },
  { title: 'what ONNX Runtime runs: integer kernels after fusing the QDQ file, float kernels left, file sizes (MB)', headers: ['model', 'integer kernels', 'float Conv/Gemm left', 'fp32 MB', 'int8 MB'], rows: kernels },
  {
    title: `where ONNX Runtime's time goes at batch ${profileBatch} (its profiler, ms per run, mean of 5): the five costliest op kinds`,
    headers: ['model', 'precision', 'kernels ms', 'costliest op kinds: ms (share)'], rows: profile,
  },
  ...(accuracy.length ? [{
    title: `Fashion-MNIST top-1 (%), ${limit ? `${limit} test images` : 'full test set'}: trained runs, fp32 ONNX vs int8 (512 calibration images from the training split); `
      + 'a QAT run against the float model it was fine-tuned from',
    headers: ['model', 'precision', 'layers, quantize time', 'top-1', 'vs fp32 (points)', 'images'], rows: accuracy,
  }] : []),
]);
