// Where the time goes, op by op, on both sides: convkit's profile() (libtorch's profiler, the
// fused inference convolutions included as convkit::fused_conv) and torch.profiler on the same
// step, self time per op side by side: each step profiled on its own and the median taken over the
// steps, as a VM that preempts the process puts 10-25 ms into whichever op was running. For each of issue 13's
// training cases and inference models; PyTorch runs with tcmalloc preloaded, its recommended set-up.
//   node dist-dev/bench/profile_ops.js [--cases resnet18,...] [--mode fp32|fp32cl|bf16cl (every case's)] [--steps 5]
//     [--threads 2] [--top 12] [--json out.json]
import './preload.js';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { F, autocast, manualSeed, noGrad, profile, randint, randn, setNumThreads, tidy } from '../src/engine/index.js';
import { createModel } from '../src/models/index.js';
import { SGD } from '../src/train/index.js';
import { arg, choiceArg, emit, listChoiceArg, median, runPython } from './common.js';
import type { BenchTable } from './results.js';

const MODES = ['fp32', 'fp32cl', 'bf16cl'] as const;
type Mode = typeof MODES[number];
interface Case { kind: 'train' | 'infer'; model: string; batch: number; size: number; channels: number; mode: Mode }
// each side's fastest mode in bench/train_throughput and bench/inference on this machine kind
const CASES: Record<string, Case> = {
  airbench_m: { kind: 'train', model: 'airbench_m', batch: 256, size: 28, channels: 1, mode: 'bf16cl' },
  resnet20: { kind: 'train', model: 'resnet20', batch: 128, size: 28, channels: 1, mode: 'bf16cl' },
  resnet18: { kind: 'train', model: 'resnet18', batch: 128, size: 32, channels: 3, mode: 'bf16cl' },
  efficientnet_b0: { kind: 'train', model: 'efficientnet_b0', batch: 128, size: 64, channels: 3, mode: 'bf16cl' },
  'resnet50-infer': { kind: 'infer', model: 'resnet50', batch: 8, size: 224, channels: 3, mode: 'bf16cl' },
  'efficientnet_b0-infer': { kind: 'infer', model: 'efficientnet_b0', batch: 8, size: 224, channels: 3, mode: 'bf16cl' },
};

interface TraceEvent { name: string; ph: string; ts: number; dur: number; tid: number | string }

/** Self time per op name (ms) from a Chrome trace: each event's duration less its children's. */
export function selfTimes(events: TraceEvent[]): Map<string, number> {
  const self = new Map<string, number>();
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) if (e.ph === 'X') byThread.set(String(e.tid), [...(byThread.get(String(e.tid)) ?? []), e]);
  for (const list of byThread.values()) {
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const stack: { end: number; name: string }[] = [];
    for (const e of list) {
      while (stack.length && stack[stack.length - 1].end <= e.ts) stack.pop();
      const parent = stack[stack.length - 1];
      if (parent) self.set(parent.name, (self.get(parent.name) ?? 0) - e.dur / 1000);
      self.set(e.name, (self.get(e.name) ?? 0) + e.dur / 1000);
      stack.push({ end: e.ts + e.dur, name: e.name });
    }
  }
  return self;
}

async function convkitProfile(c: Case, steps: number): Promise<{ stepMs: number; ops: Map<string, number> }> {
  manualSeed(0);
  const train = c.kind === 'train';
  const model = createModel(c.model, { numClasses: train ? 10 : 1000, inChannels: c.channels });
  const cl = c.mode !== 'fp32';
  if (cl) model.to({ memoryFormat: 'channelsLast' });
  model.train(train);
  const x = randn([c.batch, c.channels, c.size, c.size]).contiguous(cl ? 'channelsLast' : 'contiguous');
  const y = randint(0, 10, [c.batch]);
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const forward = (): never => (c.mode === 'bf16cl' ? autocast(() => model.call(x)) : model.call(x)) as never;
  const step = (): void => tidy(() => {
    if (!train) return void noGrad(forward);
    opt.zeroGrad();
    const loss = c.mode === 'bf16cl' ? autocast(() => F.crossEntropy(forward(), y)) : F.crossEntropy(forward(), y);
    loss.backward();
    opt.step();
  });
  for (let i = 0; i < 3; i++) step();
  const walls: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    walls.push(performance.now() - t0);
  }
  const perStep: Map<string, number>[] = [];
  const trace = join(tmpdir(), `convkit-profile-${process.pid}.json`);
  for (let i = 0; i < steps; i++) {
    await profile(trace, step);
    const parsed = JSON.parse(readFileSync(trace, 'utf8')) as TraceEvent[] | { traceEvents: TraceEvent[] };
    perStep.push(selfTimes(Array.isArray(parsed) ? parsed : parsed.traceEvents));
  }
  rmSync(trace, { force: true });
  const names = new Set(perStep.flatMap((m) => [...m.keys()]));
  const ops = new Map([...names].map((k) => [k, median(perStep.map((m) => m.get(k) ?? 0))]));
  model.dispose();
  return { stepMs: median(walls), ops };
}

const threads = arg('threads', 2), steps = arg('steps', 5), top = arg('top', 12);
const names = listChoiceArg('cases', Object.keys(CASES)) ?? Object.keys(CASES);
const mode = choiceArg('mode', MODES);
setNumThreads(threads);
const tables: BenchTable[] = [];
for (const name of names) {
  const c = mode ? { ...CASES[name], mode } : CASES[name];
  const ck = await convkitProfile(c, steps);
  const py = runPython<{ step_ms: number; ops: Record<string, number> }>('profile_ops.py',
    [threads, c.kind, c.model, c.batch, c.size, c.channels, c.mode, steps], threads, 'tcmalloc');
  const pyOps = new Map(Object.entries(py.ops));
  const keys = [...new Set([...ck.ops.keys(), ...pyOps.keys()])];
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const rows = keys
    .map((k) => [k, ck.ops.get(k) ?? 0, pyOps.get(k) ?? 0] as [string, number, number])
    .sort((a, b) => Math.max(b[1], b[2]) - Math.max(a[1], a[2]))
    .slice(0, top)
    .map(([k, a, b]) => [k, a, b, a - b]);
  rows.push(['(all ops, self time)', sum(ck.ops), sum(pyOps), sum(ck.ops) - sum(pyOps)]);
  rows.push(['(step, wall, unprofiled)', ck.stepMs, py.step_ms, ck.stepMs - py.step_ms]);
  tables.push({
    title: `${name}: ${c.kind === 'train' ? 'training step' : 'eval forward'}, ${c.model} ${c.channels}x${c.size}x${c.size}, batch ${c.batch}, `
      + `${c.mode}, ${threads} threads; self time per step (ms, median of ${steps} steps), top ${top} ops by the larger side; PyTorch 1.13 + tcmalloc`,
    headers: ['op', 'convkit (ms)', 'PyTorch (ms)', 'convkit - PyTorch (ms)'],
    rows,
  });
}
emit('profile_ops', tables);
