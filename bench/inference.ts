// Issue 13's inference goal: eval-mode forward throughput at batch 1 and 8, 224 px, of ResNet-50
// and EfficientNet-B0, convkit on libtorch (with its fused inference convolutions) against
// PyTorch eager (Python, on glibc's malloc and on tcmalloc), each side in each mode: fp32,
// fp32 channels-last, bf16 autocast + channels-last (where the CPU has bf16). The sides take
// turns round after round; the ratio is convkit's best mode against PyTorch's best mode and
// set-up.
//   node dist-dev/bench/inference.js [--steps 10] [--rounds 1] [--threads 2] [--models resnet50,efficientnet_b0]
//     [--batches 1,8] [--size 224] [--modes fp32,fp32cl,bf16cl] [--json out.json]
import './preload.js';
import { performance } from 'node:perf_hooks';
import { autocast, cpuHasBf16, manualSeed, noGrad, randn, setNumThreads, tidy } from '../src/engine/index.js';
import { createModel } from '../src/models/index.js';
import { arg, convkitSetup, emit, listArg, median, PY_ALLOCATORS, runPython, sideBySide } from './common.js';

type Mode = 'fp32' | 'fp32cl' | 'bf16cl';
const MODE_NAMES: Record<Mode, string> = { fp32: 'fp32', fp32cl: 'channels-last', bf16cl: 'bf16 + channels-last' };

function convkitLatencies(name: string, batches: number[], size: number, modes: Mode[], steps: number, warmup: number): Record<string, number[]> {
  manualSeed(0);
  const model = createModel(name);
  model.eval();
  const out: Record<string, number[]> = {};
  for (const batch of batches) {
    const x = randn([batch, 3, size, size]);
    for (const mode of modes) {
      const input = mode === 'fp32' ? x : x.contiguous('channelsLast');
      model.to({ memoryFormat: mode === 'fp32' ? 'contiguous' : 'channelsLast' });
      const forward = (): unknown => (mode === 'bf16cl' ? autocast(() => model.call(input)) : model.call(input));
      const times: number[] = [];
      noGrad(() => {
        for (let i = 0; i < warmup + steps; i++) {
          const t0 = performance.now();
          tidy(() => { forward(); });
          if (i >= warmup) times.push(performance.now() - t0);
        }
      });
      if (input !== x) input.dispose();
      out[`${name}:${batch}:${mode}`] = times;
    }
    x.dispose();
  }
  model.dispose();
  return out;
}

const steps = arg('steps', 10), rounds = arg('rounds', 1), warmup = 3, threads = arg('threads', 2), size = arg('size', 224);
const names = listArg('models') ?? ['resnet50', 'efficientnet_b0'];
const batches = (listArg('batches') ?? ['1', '8']).map(Number);
const modes = ((listArg('modes') ?? ['fp32', 'fp32cl', 'bf16cl']) as Mode[]).filter((m) => m !== 'bf16cl' || cpuHasBf16());
setNumThreads(threads);
const sides = await sideBySide(rounds,
  () => Object.assign({}, ...names.map((n) => convkitLatencies(n, batches, size, modes, steps, warmup))) as Record<string, number[]>,
  (alloc) => runPython<Record<string, number[]>>('inference.py', [threads, steps, warmup, names.join(','), batches.join(','), size, modes.join(',')], threads, alloc));

// images per second from the median latency of all rounds
const rate = (runs: Record<string, number[]>[], key: string, batch: number): number => (1000 * batch) / median(runs.flatMap((r) => r[key]));
const rows: (string | number)[][] = [];
for (const n of names) {
  for (const b of batches) {
    const ck = modes.map((m) => rate(sides.convkit, `${n}:${b}:${m}`, b));
    const pt = PY_ALLOCATORS.flatMap((a) => modes.map((m) => rate(sides.pytorch[a], `${n}:${b}:${m}`, b)));
    rows.push([n, `${b}`, ...ck, ...pt, Math.max(...ck) / Math.max(...pt)]);
  }
}
emit('inference', [{
  title: `eval forward throughput (images/s), ${size} px, ${threads} threads, median of ${steps} steps x ${rounds} rounds; ${convkitSetup()}; `
    + `modes: ${modes.map((m) => MODE_NAMES[m]).join(' / ')}`,
  headers: ['model', 'batch', ...modes.map((m) => `convkit ${MODE_NAMES[m]}`),
    ...PY_ALLOCATORS.flatMap((a) => modes.map((m) => `PyTorch 1.13${a === 'glibc' ? ', glibc' : ' + tcmalloc'} ${MODE_NAMES[m]}`)),
    'convkit best / PyTorch best'],
  rows,
}]);
