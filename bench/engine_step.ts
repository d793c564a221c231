// Issue 2's benchmark: one training step (forward, cross-entropy, backward, SGD with momentum)
// of a small ResNet-style net, convkit against PyTorch (Python, on glibc's malloc and on
// tcmalloc) on the same libtorch, in one run, the sides taking turns round after round; and the
// cost of one call into native code.
//   node dist-dev/bench/engine_step.js [--batch 64] [--steps 40] [--rounds 1] [--threads 2]
//     [--convkit-alloc glibc|tcmalloc|jemalloc] [--convkit-cache on|off] [--json out.json]
import './preload.js';
import { performance } from 'node:perf_hooks';
import { F, Tensor, manualSeed, noGrad, randint, randn, setNumThreads, tidy, ones } from '../src/engine/index.js';
import { native } from '../src/engine/native.js';
import type { Parameter } from '../src/nn/index.js';
import { Net } from './small_net.js';
import { arg, convkitSetup, emit, median, pytorchHeaders, runPython, sideBySide, vsBest, VS_BEST } from './common.js';

/** SGD with momentum and weight decay, PyTorch's update, as multi-tensor calls. */
function sgdStep(params: Parameter[], bufs: Tensor[], lr: number, momentum: number, wd: number): void {
  noGrad(() => tidy(() => {
    const grads = params.map((p) => p.grad!);
    F.foreach.add_(grads, params, wd);
    F.foreach.mulScalar_(bufs, momentum);
    F.foreach.add_(bufs, grads, 1);
    F.foreach.add_(params, bufs, -lr);
  }));
}

function convkitSteps(batch: number, steps: number, warmup: number): number[] {
  manualSeed(0);
  const net = new Net();
  const params = net.parameters();
  const bufs = params.map((p) => p.detach().mul(0).keep());
  const x = randn([batch, 3, 32, 32]);
  const y = randint(0, 10, [batch]);
  const times: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    net.zeroGrad();
    tidy(() => F.crossEntropy(net.call(x), y).backward());
    sgdStep(params, bufs, 0.05, 0.9, 5e-4);
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return times;
}

/**
 * ns of CPU time per call, the median of ROUNDS rounds. CPU time, not wall time: on a shared
 * machine the process is preempted for whole milliseconds, more than a round's calls take.
 */
const ROUNDS = 7;
function perCall(n: number, body: (n: number) => void): number {
  const ns: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.cpuUsage();
    body(n);
    const used = process.cpuUsage(t0);
    ns.push(((used.user + used.system) / n) * 1e3);
  }
  return median(ns);
}

function callCost(): { numelNs: number; addNs: number } {
  const a = ones([1]);
  const numelNs = perCall(200000, (n) => { for (let i = 0; i < n; i++) native.numel(a.handle); });
  const addNs = perCall(50000, (n) => { for (let i = 0; i < n; i++) a.add(a).dispose(); });
  a.dispose();
  return { numelNs, addNs };
}

/** One side's figures in one round. */
interface Figures { stepMs: number[]; numelNs: number; addNs: number }

/** The median of each figure over the rounds (of every step, for the step time). */
function medians(rs: Figures[]): number[] {
  return [median(rs.flatMap((r) => r.stepMs)), median(rs.map((r) => r.numelNs)), median(rs.map((r) => r.addNs))];
}

const batch = arg('batch', 64), steps = arg('steps', 40), rounds = arg('rounds', 1), warmup = 5, threads = arg('threads', 2);
setNumThreads(threads);
const sides = await sideBySide(rounds,
  (): Figures => ({ stepMs: convkitSteps(batch, steps, warmup), ...callCost() }),
  (alloc): Figures => {
    const py = runPython<{ step_ms: number[]; numel_ns: number; add_ns: number }>('engine_step.py', [batch, steps, warmup, threads], threads, alloc);
    return { stepMs: py.step_ms, numelNs: py.numel_ns, addNs: py.add_ns };
  });
const ck = medians(sides.convkit), glibc = medians(sides.pytorch.glibc), tcmalloc = medians(sides.pytorch.tcmalloc);
const LABELS = ['training step (ms)', 'trivial call: numel (ns CPU)', 'small op: add of 1-element tensors (ns CPU)'];
emit('engine_step', [{
  title: `training step of a small ResNet-style net, batch ${batch}, 3x32x32, ${threads} threads, median of ${steps} steps x ${rounds} rounds; ` +
    `call overhead; ${convkitSetup()}`,
  headers: ['', 'convkit', ...pytorchHeaders('', 'PyTorch 1.13 (Python)'), VS_BEST],
  rows: LABELS.map((label, k) => [label, ck[k], glibc[k], tcmalloc[k], vsBest(ck[k], [glibc[k], tcmalloc[k]], 'lower')]),
}]);
