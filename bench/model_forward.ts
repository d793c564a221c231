// Issue 3's benchmark: eval-mode forward latency at batch 8 and each family's resolution,
// convkit against PyTorch (Python) on the same machine and libtorch, in one run.
//   node dist-dev/bench/model_forward.js [--steps 10] [--threads 2] [--models resnet50,efficientnet_b0] [--json out.json]
import { performance } from 'node:perf_hooks';
import { manualSeed, noGrad, randn, setNumThreads, tidy } from '../src/engine/index.js';
import { createModel, modelEntry } from '../src/models/index.js';
import { arg, emit, listArg, median, runPython } from './common.js';

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

const steps = arg('steps', 10), warmup = 2, threads = arg('threads', 2), batch = 8;
const names = listArg('models') ?? DEFAULT;
setNumThreads(threads);
const sizes = names.map((n) => modelEntry(n).config.inputSize[1]);
const py = runPython<Record<string, number[]>>('model_forward.py',
  [threads, steps, warmup, names.map((n, k) => `${n}:${batch}:${sizes[k]}`).join(',')], threads);
const rows = names.map((n, k) => {
  const ck = median(convkitLatency(n, batch, sizes[k], steps, warmup));
  const pt = median(py[n]);
  return [n, `${sizes[k]}`, ck, pt, ck / pt];
});
emit('model_forward', [{
  title: `eval forward latency, batch ${batch}, fp32, ${threads} threads, median of ${steps}`,
  headers: ['model', 'px', 'convkit (ms)', 'PyTorch 1.13 (ms)', 'convkit / PyTorch'],
  rows,
}]);
