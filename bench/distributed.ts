// Issue 18's benchmark: data-parallel training over c10d (Gloo) on this machine's loopback.
// 1. All-reduce of float32 tensors of 1 KB to 64 MB between 2 processes: convkit's ProcessGroup
//    against PyTorch's torch.distributed on the same libtorch's Gloo, side by side (median time of
//    one all-reduce after a barrier; bus bandwidth as nccl-tests counts it, 2(W-1)/W bytes per rank).
// 2. Training throughput of 1 and 2 processes of one thread each (ResNet-18 at 32 px, the default
//    model airbench_m at 28 px), the global batch split over the processes; scaling efficiency.
//    Overlap: c10d records when each gradient was ready; what the backward pass spends after the
//    last one is communication it could not hide, against one all-reduce of all the gradients.
//    The same steps under noSync give the compute alone. For ResNet-18, PyTorch's own DDP
//    (bench/py/ddp_train.py, torchvision's resnet18) on the same settings, as the anchor.
// 3. From those figures, an estimate of the efficiency at 8 and 64 workers on 10 and 100 Gbit/s
//    (ring all-reduce, the per-worker batch of the measurement; assumptions in the table's title).
//   node dist-dev/bench/distributed.js [--sizes 1024,...] [--budget-mb 256] [--cases resnet18,airbench_m]
//     [--steps 20] [--rounds 1] [--bucket-view on|off] [--comm-hook allreduce|fp16] [--quick] [--json out.json]
// Workers are this same script with --worker allreduce|train and torchrun's variables.
import './preload.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { F, manualSeed, ones, randint, randn, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import { createModel } from '../src/models/index.js';
import { SGD } from '../src/train/optim/index.js';
import type { Module } from '../src/nn/index.js';
import { DDP_COMM_HOOKS, DistributedDataParallel, ProcessGroup, freePort, workerEnv, type DdpCommHook, type DdpOptions } from '../src/distributed/index.js';
import { PYTHON, arg, choiceArg, emit, fmt, listArg, listChoiceArg, median } from './common.js';
import { stringArg } from './args.js';
import { preloadEnv } from './alloc.js';

const SCRIPT = fileURLToPath(import.meta.url);
const PY = resolve(dirname(SCRIPT), '../../bench/py/distributed.py');
const PY_TRAIN = resolve(dirname(SCRIPT), '../../bench/py/ddp_train.py');
const quick = process.argv.includes('--quick');
const KB = 1024;
const MB = 1024 * 1024;

interface AllReduceResult { sizes: number[]; ms: number[] }
interface TrainResult {
  /** wall time per step, ms (median) */
  stepMs: number;
  /** the same steps without communication (noSync), 2+ processes only */
  computeMs?: number;
  /** one all-reduce of all gradients at once, ms */
  allReduceMs?: number;
  /** backward passes with communication: time from the last gradient ready to backward's end, ms (median) */
  exposedMs?: number;
  gradBytes: number;
  batch: number;
}

interface Case { model: string; channels: number; size: number; batch: number }
const CASES: Record<string, Case> = {
  resnet18: { model: 'resnet18', channels: 3, size: 32, batch: 64 },
  airbench_m: { model: 'airbench_m', channels: 1, size: 28, batch: 256 },
};

// ---- workers ------------------------------------------------------------------------------

async function allReduceWorker(sizes: number[], budget: number): Promise<AllReduceResult> {
  setNumThreads(1);
  const g = await ProcessGroup.init({ ...workerEnv(), rendezvousTimeoutMs: 60_000, timeoutMs: 120_000 });
  const ms: number[] = [];
  for (const size of sizes) {
    const t = ones([size / 4]);
    const iters = Math.max(5, Math.min(200, Math.floor(budget / size)));
    for (let i = 0; i < 3; i++) g.allReduce(t).waitSync();
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      g.barrier().waitSync();
      const t0 = performance.now();
      g.allReduce(t).waitSync();
      times.push(performance.now() - t0);
    }
    ms.push(median(times));
    t.dispose();
  }
  g.destroy();
  return { sizes, ms };
}

async function trainWorker(c: Case, steps: number, perProcess: boolean, ddpOpts: DdpOptions): Promise<TrainResult> {
  setNumThreads(1);
  const world = Number(process.env.WORLD_SIZE ?? 1);
  const group = world > 1 ? await ProcessGroup.init({ ...workerEnv(), rendezvousTimeoutMs: 60_000, timeoutMs: 600_000 }) : null;
  manualSeed(0);
  const model = createModel(c.model, { numClasses: 10, inChannels: c.channels }) as unknown as Module<[Tensor], Tensor>;
  model.to({ memoryFormat: 'channelsLast' });
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const ddp = group ? new DistributedDataParallel(model as unknown as Module<unknown[], unknown>, group, ddpOpts) : null;
  // split: the global batch shared out; per process: each keeps the whole batch (weak scaling)
  const local = perProcess ? c.batch : c.batch / world;
  const x = randn([local, c.channels, c.size, c.size]).contiguous('channelsLast');
  const y = randint(0, 10, [local]);
  const exposed: number[] = [];
  const step = (sync: boolean): number => {
    const t0 = performance.now();
    tidy(() => {
      opt.zeroGrad();
      const run = (): void => {
        const loss = F.crossEntropy(ddp ? (ddp.forward(x) as Tensor) : model.call(x), y);
        if (ddp) ddp.backward(loss);
        else loss.backward();
      };
      if (ddp && !sync) ddp.noSync(run);
      else run();
      opt.step();
    });
    const tl = sync ? ddp?.lastBackwardTimeline() : null;
    if (tl) exposed.push(tl.backwardMs - tl.lastGradientMs);
    return performance.now() - t0;
  };
  const timed = (sync: boolean): number => {
    for (let i = 0; i < 2; i++) step(sync);
    group?.barrier().waitSync();
    return median(Array.from({ length: steps }, () => step(sync)));
  };
  const stepMs = timed(true);
  const gradBytes = model.parameters().reduce((n, p) => n + p.numel() * 4, 0);
  const result: TrainResult = { stepMs, gradBytes, batch: local * world };
  if (group) {
    result.computeMs = timed(false);
    const flat = ones([gradBytes / 4]);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      group.barrier().waitSync();
      const t0 = performance.now();
      group.allReduce(flat).waitSync();
      times.push(performance.now() - t0);
    }
    result.allReduceMs = median(times);
    result.exposedMs = median(exposed.slice(2)); // after the 2 warm-up steps
  }
  ddp?.dispose();
  group?.destroy();
  return result;
}

// ---- the coordinator ------------------------------------------------------------------------

/** Runs `world` processes (node or python) with torchrun's variables; resolves with rank 0's last JSON line. */
async function job<T>(world: number, command: string, args: string[], base: NodeJS.ProcessEnv = process.env): Promise<T> {
  const port = await freePort();
  const outs = Array.from({ length: world }, (_, rank) => new Promise<string>((res, rej) => {
    const child = spawn(command, args, {
      env: { ...base, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OMP_NUM_THREADS: '1', CONVKIT_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${command} ${args.join(' ')} rank ${rank} exited with ${code}`))));
  }));
  const lines = (await Promise.all(outs))[0].trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

const sizeName = (b: number): string => (b >= MB ? `${b / MB} MB` : `${b / KB} KB`);

/** DDP's options from --bucket-view on|off and --comm-hook allreduce|fp16, given to both sides. */
function ddpArgs(): { bucketView: 'on' | 'off'; commHook: DdpCommHook } {
  const view = choiceArg('bucket-view', ['on', 'off'] as const) ?? 'on';
  const hook: DdpCommHook = choiceArg('comm-hook', DDP_COMM_HOOKS) ?? 'allreduce';
  return { bucketView: view, commHook: hook };
}

/** PyTorch's DDP on torchvision's resnet18, tcmalloc preloaded (its recommended CPU set-up): `world` processes, the batch split or whole in each. */
function pyTrain(world: number, steps: number, batch: number, perProcess: boolean): Promise<TrainResult> {
  const { bucketView, commHook } = ddpArgs();
  return job<TrainResult>(world, PYTHON, [PY_TRAIN, String(steps), String(batch), perProcess ? 'per-process' : 'split', bucketView, commHook], preloadEnv('tcmalloc'));
}

const imagesPerSec = (r: TrainResult): number => (r.batch / r.stepMs) * 1000;
/** The run with the median step time. */
const medianRun = (rs: TrainResult[]): TrainResult => [...rs].sort((a, b) => a.stepMs - b.stepMs)[Math.floor((rs.length - 1) / 2)];

async function main(): Promise<void> {
  const role = stringArg('worker');
  if (role === 'allreduce') {
    console.log(JSON.stringify(await allReduceWorker(stringArg('sizes')!.split(',').map(Number), arg('budget', 256 * MB))));
    return;
  }
  if (role === 'train') {
    const { bucketView, commHook } = ddpArgs();
    const opts: DdpOptions = { gradientAsBucketView: bucketView === 'on', commHook };
    console.log(JSON.stringify(await trainWorker(CASES[stringArg('case')!], arg('steps', 20), process.argv.includes('--per-process'), opts)));
    return;
  }
  const sizes = listArg('sizes')?.map(Number) ?? (quick ? [KB, 64 * KB] : [KB, 16 * KB, 256 * KB, 4 * MB, 64 * MB]);
  const budget = arg('budget-mb', quick ? 4 : 256) * MB;
  const rounds = arg('rounds', 1);
  const steps = arg('steps', quick ? 2 : 20);
  const cases = listChoiceArg('cases', Object.keys(CASES)) ?? (quick ? ['airbench_m'] : ['resnet18', 'airbench_m']);
  const { bucketView, commHook } = ddpArgs();

  // 1. all-reduce, the sides taking turns
  const ck: number[][] = [];
  const py: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    ck.push((await job<AllReduceResult>(2, process.execPath, [SCRIPT, '--worker', 'allreduce', '--sizes', sizes.join(','), '--budget', String(budget)])).ms);
    py.push((await job<AllReduceResult>(2, PYTHON, [PY, sizes.join(','), String(budget)])).ms);
  }
  const busGBs = (bytes: number, ms: number): number => (bytes / (ms / 1000) / 1e9); // 2(W-1)/W = 1 at W = 2
  const arRows = sizes.map((s, i) => {
    const c = median(ck.map((m) => m[i]));
    const p = median(py.map((m) => m[i]));
    return [sizeName(s), fmt(c * 1000), fmt(p * 1000), fmt(busGBs(s, c)), fmt(busGBs(s, p)), fmt(p / c)];
  });

  // 2. training throughput, 1 and 2 processes of one thread each
  const trainRows: (string | number)[][] = [];
  const estimates: (string | number)[][] = [];
  for (const name of cases) {
    const args = [SCRIPT, '--worker', 'train', '--case', name, '--steps', String(steps), '--bucket-view', bucketView, '--comm-hook', commHook];
    // torchvision has ResNet-18 only: PyTorch's side runs right after convkit's, on the same settings
    const anchor = name === 'resnet18';
    // rounds: the configurations take turns, and each keeps its median run (a noisy host moves them alike)
    const ones: TrainResult[] = [], pyOnes: TrainResult[] = [];
    const twoRuns: TrainResult[][] = [[], []], pyTwoRuns: TrainResult[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      ones.push(await job<TrainResult>(1, process.execPath, args));
      if (anchor) pyOnes.push(await pyTrain(1, steps, CASES[name].batch, false));
      for (const [i, perProcess] of [false, true].entries()) {
        twoRuns[i].push(await job<TrainResult>(2, process.execPath, perProcess ? [...args, '--per-process'] : args));
        if (anchor) pyTwoRuns[i].push(await pyTrain(2, steps, CASES[name].batch, perProcess));
      }
    }
    const one = medianRun(ones);
    const pyOne = anchor ? medianRun(pyOnes) : null;
    const ips1 = imagesPerSec(one);
    const twos: TrainResult[] = [];
    for (const [i, perProcess] of [false, true].entries()) {
      const two = medianRun(twoRuns[i]);
      const pyTwo = pyOne ? medianRun(pyTwoRuns[i]) : null;
      twos.push(two);
      const ips2 = imagesPerSec(two);
      const py = pyOne && pyTwo ? [fmt(imagesPerSec(pyOne)), fmt(imagesPerSec(pyTwo)), fmt(imagesPerSec(pyTwo) / (2 * imagesPerSec(pyOne)))] : ['-', '-', '-'];
      // communication hidden: c10d's record of when the last gradient was ready says how much of
      // the backward pass's end was spent waiting on the all-reduce; the rest ran under compute
      const overlap = Math.max(0, Math.min(1, 1 - two.exposedMs! / two.allReduceMs!));
      trainRows.push([name, perProcess ? `${one.batch} per process` : `${one.batch} split`, two.batch, fmt(ips1), fmt(ips2), fmt(ips2 / (2 * ips1)),
        fmt(two.computeMs!), fmt(two.stepMs), fmt(two.allReduceMs!), fmt(two.exposedMs!), `${fmt(100 * overlap)} %`, ...py]);
    }
    // the estimate below keeps the per-worker batch: the per-process measurement
    const two = twos[1];
    const overlap = Math.max(0, Math.min(1, 1 - two.exposedMs! / two.allReduceMs!));
    // 3. the estimate: each worker keeps the measured per-worker batch and compute time; a ring
    // all-reduce moves 2(W-1)/W of the gradients per worker over its link, plus 2(W-1) latencies
    for (const gbit of [10, 100]) {
      for (const w of [8, 64]) {
        const t = ((2 * (w - 1)) / w) * two.gradBytes / ((gbit * 1e9) / 8) * 1000 + 2 * (w - 1) * 0.05;
        const noOverlap = two.computeMs! / (two.computeMs! + t);
        // hidden behind backward (about 2/3 of a step) at the overlap measured here
        const hidden = Math.min(t, overlap * (2 / 3) * two.computeMs!);
        const withOverlap = two.computeMs! / (two.computeMs! + t - hidden);
        estimates.push([name, `${gbit} Gbit/s`, w, fmt(t), fmt(noOverlap), fmt(withOverlap)]);
      }
    }
  }
  emit('distributed', [
    {
      title: `all-reduce of float32 over loopback, 2 processes, Gloo: median µs per call after a barrier; bus bandwidth GB/s`,
      headers: ['size', 'convkit (µs)', 'PyTorch (µs)', 'convkit GB/s', 'PyTorch GB/s', 'convkit speed / PyTorch'],
      rows: arRows,
    },
    {
      title: `data-parallel training step, 1 thread per process, channels-last fp32, synthetic data, median of ${steps} steps, the median of ${rounds} rounds taking turns; the batch split over the processes (strong scaling) or each process with the whole batch (weak scaling, as DDP's scaling figures are usually given); DDP with gradient as bucket view ${bucketView}, comm hook ${commHook}, on both sides (PyTorch: torchvision's resnet18 with tcmalloc preloaded, so none for airbench_m)`,
      headers: ['model', 'batch', '2 proc: global batch', '1 process (img/s)', '2 processes (img/s)', 'scaling efficiency', '2 proc: compute (ms)', '2 proc: step (ms)', 'all-reduce of all grads (ms)', 'after the last gradient (ms)', 'communication hidden',
        'PyTorch DDP 1 proc (img/s)', 'PyTorch DDP 2 proc (img/s)', 'PyTorch DDP scaling efficiency'],
      rows: trainRows,
    },
    {
      title: 'estimate: efficiency at W workers, per-worker batch and compute as measured with 2 processes of a whole batch each, ring all-reduce at the link rate plus 50 µs per hop, 2/3 of a step in backward',
      headers: ['model', 'network', 'workers', 'all-reduce (ms)', 'efficiency, no overlap', 'efficiency, measured overlap'],
      rows: estimates,
    },
  ]);
}

await main();
