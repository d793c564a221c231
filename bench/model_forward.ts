// Issue 3's benchmark: eval-mode forward latency at batch 8 and each family's resolution,
// convkit against PyTorch (Python, on glibc's malloc and on tcmalloc) on the same machine and
// libtorch, in one run, the sides taking turns round after round.
//   node dist-dev/bench/model_forward.js [--steps 10] [--rounds 1] [--threads 2] [--models resnet50,efficientnet_b0]
//     [--convkit-alloc glibc|tcmalloc|jemalloc] [--convkit-cache on|off] [--json out.json]
import './preload.js';
import { performance } from 'node:perf_hooks';
import { manualSeed, noGrad, randn, setNumThreads, tidy } from '../src/engine/index.js';
import { createModel, modelEntry } from '../src/models/index.js';
import { arg, convkitSetup, emit, listArg, median, pytorchHeaders, runPython, sideBySide, vsBest, VS_BEST } from './common.js';

const DEFAULT = ['resnet50', 'inception_v3', 'efficientnet_b0', 'efficientnet_b3'];

function convkitLatency(name: string, batch: number, size: number, steps: number, warmup: number): number[] {
  manualSeed(0);
  const model = createModel(name, name === 'inception_v3' || name === 'googlenet' ? { auxLogits: false } : {});
  model.eval();
  const x = randn([batch, 3, size, size]);
  const times: number[] = [];
  noGrad(() => {
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      tidy(() => { model.call(x); });
      if (i >= warmup) times.push(performance.now() - t0);
    }
  });
  x.dispose();
  model.dispose();
  return times;
}

const steps = arg('steps', 10), rounds = arg('rounds', 1), warmup = 2, threads = arg('threads', 2), batch = 8;
const names = listArg('models') ?? DEFAULT;
setNumThreads(threads);
const sizes = names.map((n) => modelEntry(n).config.inputSize[1]);
const cases = names.map((n, k) => `${n}:${batch}:${sizes[k]}`).join(',');
const sides = await sideBySide(rounds,
  () => names.map((n, k) => convkitLatency(n, batch, sizes[k], steps, warmup)),
  (alloc) => runPython<Record<string, number[]>>('model_forward.py', [threads, steps, warmup, cases], threads, alloc));
const rows = names.map((n, k) => {
  const ck = median(sides.convkit.flatMap((r) => r[k]));
  const pt = [median(sides.pytorch.glibc.flatMap((r) => r[n])), median(sides.pytorch.tcmalloc.flatMap((r) => r[n]))];
  return [n, `${sizes[k]}`, ck, ...pt, vsBest(ck, pt, 'lower')];
});
emit('model_forward', [{
  title: `eval forward latency, batch ${batch}, fp32, ${threads} threads, median of ${steps} steps x ${rounds} rounds; ${convkitSetup()}`,
  headers: ['model', 'px', 'convkit (ms)', ...pytorchHeaders(' (ms)'), VS_BEST],
  rows,
}]);
