// Issue 15's pruning goals on Fashion-MNIST: ResNet-20, the default airbench_m and ResNet-56
// pruned to 70 / 50 / 30 % of their MACs by each importance criterion (L1, BN gamma, Taylor),
// fine-tuned with the trainer; per point the test accuracy against the unpruned model's on the
// same images, the MACs, and the measured speed-up of the forward pass under libtorch (convkit's
// eval path, fused convolutions) and ONNX Runtime (the exported graph, with `predict`'s session
// options), the unpruned and the pruned model taking turns. A table and an SVG of accuracy
// against MACs.
//   node dist-dev/bench/prune.js [--models resnet20,airbench_m,resnet56] [--targets 0.7,0.5,0.3]
//     [--methods l1,bn,taylor] [--epochs 15] [--finetune-epochs 5] [--finetune-lr x] [--limit-train N] [--limit-test N]
//     [--batch 64] [--steps 40] [--threads 2] [--runs <dir>] [--svg <file>] [--json <file>] [--quick]
// The unpruned baselines are trained first (airbench_m: the run in --airbench, default
// runs/bench-default, the default recipe's run, trained first when missing); runs live under --runs (default
// runs/bench-prune) and a rerun reuses finished ones. --quick: resnet20 (trained here) and
// airbench_m (the checkpoint, when there) at 50 %, a few hundred images, one epoch each, to see
// that the script works.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import { noGrad, randn, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import type { Module } from '../src/nn/index.js';
import { Trainer } from '../src/train/trainer.js';
import { evaluateCheckpoint } from '../src/train/eval_checkpoint.js';
import { lineChart } from '../src/train/report.js';
import { loadExportSource } from '../src/export/source.js';
import { exportOnnx, ortSessionOptions } from '../src/export/index.js';
import { countMacs } from '../src/analyze/macs.js';
import { pruneCheckpoint, type PruneMethod, type PruneRunResult } from '../src/compress/index.js';
import { arg, emit, listArg, median, writePlot } from './common.js';
import { stringArg } from './args.js';
import { defaultRun } from './train_cli.js';

const quick = process.argv.includes('--quick');
const threads = arg('threads', 2);
setNumThreads(threads);
const models = listArg('models') ?? (quick ? ['resnet20', 'airbench_m'] : ['resnet20', 'airbench_m', 'resnet56']);
const targets = (listArg('targets') ?? (quick ? ['0.5'] : ['0.7', '0.5', '0.3'])).map(Number);
const methods = (listArg('methods') ?? ['l1', 'bn', 'taylor']) as PruneMethod[];
const epochs = arg('epochs', quick ? 1 : 15);
const finetuneEpochs = arg('finetune-epochs', quick ? 1 : 5);
/** fine-tuning learning rate; unset: pruneCheckpoint's default, a tenth of the base run's */
const finetuneLr = stringArg('finetune-lr') === undefined ? undefined : arg('finetune-lr', 0);
const limitTrain = arg('limit-train', quick ? 512 : 60000);
const limitTest = arg('limit-test', quick ? 256 : 10000);
const batch = arg('batch', 64);
const steps = arg('steps', quick ? 8 : 40);
const warmup = 5;
const airbench = stringArg('airbench') ?? (quick ? '' : defaultRun());
const runsDir = path.resolve(stringArg('runs') ?? (quick ? fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-prune-')) : 'runs/bench-prune'));

/** The unpruned model's run folder: trained here unless it exists (airbench_m: the shared checkpoint). */
async function baseline(model: string): Promise<string> {
  if (model === 'airbench_m' && fs.existsSync(path.join(airbench, 'model.safetensors'))) return airbench;
  const dir = path.join(runsDir, model, 'base');
  const last = path.join(dir, 'last.safetensors');
  const trainer = fs.existsSync(last) ? Trainer.resume(last) : Trainer.create({
    model, dataset: 'fashion-mnist', epochs, limitTrain, limitTest, threads, reportImages: 0, outDir: dir, seed: 0,
    ...(model.startsWith('resnet') ? { optimizer: 'sgd', lr: 0.1, batchSize: 128, weightDecay: 5e-4, labelSmoothing: 0, warmupEpochs: quick ? 0 : 1 } : {}),
  }, { overwrite: true });
  try {
    const r = await trainer.run();
    if (r.interrupted) process.exit(130);
  } finally {
    trainer.dispose();
  }
  return dir;
}

interface Runner { macs: number; libtorch: () => void; ort: () => Promise<unknown>; dispose: () => Promise<void> }

/** A model's batch forward on libtorch (eval, no grad: the fused path) and on ONNX Runtime (its export). */
async function runner(file: string): Promise<Runner> {
  const src = loadExportSource(file);
  const model = src.model as unknown as Module<[Tensor], Tensor>;
  const x = randn([batch, ...src.example.shape.slice(1)]);
  const macs = countMacs(model as unknown as Module<[Tensor], unknown>, [1, ...src.example.shape.slice(1)]).total;
  model.eval();
  const { bytes } = exportOnnx(src.model, src.example, { metadata: src.metadata });
  const s = await ort.InferenceSession.create(bytes, ortSessionOptions(threads));
  const feed = { [s.inputNames[0]]: new ort.Tensor('float32', x.toTypedArray() as Float32Array, x.shape) };
  return {
    macs,
    libtorch: () => noGrad(() => tidy(() => { model.call(x); })),
    ort: () => s.run(feed),
    dispose: async () => {
      await s.release();
      x.dispose();
      src.model.dispose();
      src.example.dispose();
    },
  };
}

/**
 * Median milliseconds of each model's forward on each engine. The models take turns step by step,
 * so that a busy spell of this shared machine falls on all of them alike; the engines do not:
 * one engine's threads, still winding down after its run, slowed the other's next one.
 */
async function speeds(files: string[]): Promise<{ macs: number; libtorch: number; ort: number }[]> {
  const rs: Runner[] = [];
  try {
    for (const f of files) rs.push(await runner(f));
    const times = rs.map(() => ({ libtorch: [] as number[], ort: [] as number[] }));
    for (const engine of ['libtorch', 'ort'] as const) {
      for (let i = 0; i < warmup + steps; i++) {
        for (const [k, r] of rs.entries()) {
          const t0 = performance.now();
          await r[engine]();
          if (i >= warmup) times[k][engine].push(performance.now() - t0);
        }
      }
    }
    return rs.map((r, k) => ({ macs: r.macs, libtorch: median(times[k].libtorch), ort: median(times[k].ort) }));
  } finally {
    for (const r of rs) await r.dispose();
  }
}

async function accuracy(file: string): Promise<number> {
  const r = await evaluateCheckpoint(file, 'fashion-mnist', { limit: limitTest });
  return r.result.top1;
}

const pct = (f: number): string => `${Number((100 * f).toFixed(1))}%`;

interface Point { model: string; method: string; target: number; macs: number; top1: number; base: number; libtorchX: number; ortX: number; seconds: number }
const points: Point[] = [];
const bases: { model: string; top1: number; macs: number; libtorch: number; ort: number }[] = [];
for (const model of models) {
  const baseDir = await baseline(model);
  const baseFile = path.join(baseDir, 'model.safetensors');
  const base = { model, top1: await accuracy(baseFile), ...(await speeds([baseFile]))[0] };
  bases.push(base);
  console.error(`${model}: ${(base.macs / 1e6).toFixed(2)} M MACs, top-1 ${(100 * base.top1).toFixed(2)}%`);
  for (const method of methods) {
    for (const target of targets) {
      const out = path.join(runsDir, model, `${method}-${Math.round(target * 100)}`);
      const report = path.join(out, 'prune.json');
      if (!fs.existsSync(report)) {
        await pruneCheckpoint(baseDir, { method, targetMacs: target, finetuneEpochs, lr: finetuneLr, limitTrain, limitTest, outDir: out, overwrite: true, recipe: { threads, reportImages: 0 } });
      }
      // from the run's own record, so that a reused run reports the time it took
      const { rounds } = JSON.parse(fs.readFileSync(report, 'utf8')) as PruneRunResult;
      const seconds = rounds.reduce((t, r) => t + (r.finetune?.seconds ?? 0), 0);
      const file = path.join(out, 'model.safetensors');
      const [b, s] = await speeds([baseFile, file]);
      const p: Point = {
        model, method, target, macs: s.macs, top1: await accuracy(file), base: base.top1, libtorchX: b.libtorch / s.libtorch, ortX: b.ort / s.ort, seconds,
      };
      points.push(p);
      console.error(`${model} ${method} ${pct(target)}: ${(p.macs / base.macs * 100).toFixed(1)}% MACs, top-1 ${(100 * p.top1).toFixed(2)}% ` +
        `(${(100 * (p.top1 - p.base)).toFixed(2)}), ${p.libtorchX.toFixed(2)}x libtorch, ${p.ortX.toFixed(2)}x ONNX Runtime`);
    }
  }
}

const COLORS: Record<string, string> = { l1: '#1f77b4', bn: '#ff7f0e', taylor: '#2ca02c' };
// the unpruned model is each curve's point at 100 %
const svg = lineChart('Fashion-MNIST top-1 (%) against MACs kept (%) after pruning and fine-tuning', models.flatMap((m) => methods.map((method) => ({
  name: `${m} ${method}`, color: COLORS[method] ?? '#444',
  points: [[100, 100 * bases.find((b) => b.model === m)!.top1] as [number, number],
    ...points.filter((p) => p.model === m && p.method === method).map((p) => [100 * p.macs / bases.find((b) => b.model === m)!.macs, 100 * p.top1] as [number, number])],
}))), 'MACs kept (% of the unpruned model)', { width: 620, height: 360 });
const plot = writePlot('prune', svg, runsDir);

emit('prune', [
  {
    title: `unpruned models on Fashion-MNIST (${limitTest} test images); forward of a batch of ${batch}, ${threads} threads`,
    headers: ['model', 'MMACs', 'top-1 %', 'libtorch ms', 'ONNX Runtime ms'],
    rows: bases.map((b) => [b.model, (b.macs / 1e6).toFixed(2), (100 * b.top1).toFixed(2), b.libtorch.toFixed(2), b.ort.toFixed(2)]),
  },
  {
    title: `pruned and fine-tuned ${finetuneEpochs} epoch(s) on ${limitTrain} training images (learning rate ${finetuneLr ?? 'a tenth of the base run\'s'}, the base run's schedule): accuracy change against the unpruned model, and the speed-up of the same forward`,
    headers: ['model', 'importance', 'target MACs', 'MACs kept %', 'top-1 %', 'change (points)', 'libtorch speed-up', 'ONNX Runtime speed-up', 'fine-tune s'],
    rows: points.map((p) => [p.model, p.method, pct(p.target), (100 * p.macs / bases.find((b) => b.model === p.model)!.macs).toFixed(1),
      (100 * p.top1).toFixed(2), (100 * (p.top1 - p.base)).toFixed(2), `${p.libtorchX.toFixed(2)}x`, `${p.ortX.toFixed(2)}x`, p.seconds.toFixed(0)]),
  },
], plot);
if (quick && stringArg('runs') === undefined) fs.rmSync(runsDir, { recursive: true, force: true });
