// What augmentation costs next to training: batched augmentation pipelines (the CIFAR recipe,
// + random erasing, + RandAugment, mixup/cutmix, Inception crops) against one training step of a
// small ResNet-style net on the same batch, timed alternately in one process so both see the
// same machine; and torchvision's per-image transforms on the same batches for reference, on
// glibc's malloc and on tcmalloc, run after convkit's rounds.
//   node dist-dev/bench/data_augment.js [--batch 128] [--rounds 15] [--threads 2]
//     [--convkit-alloc glibc|tcmalloc|jemalloc] [--convkit-cache on|off] [--json out.json]
import './preload.js';
import { performance } from 'node:perf_hooks';
import { F, manualSeed, noGrad, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import type { Parameter } from '../src/nn/index.js';
import { Net } from './small_net.js';
import { compose, synthetic, type Batch, type TransformSpec } from '../src/data/index.js';
import { arg, convkitSetup, emit, median, pytorchHeaders, runPython, sideBySide, vsBest, VS_BEST } from './common.js';

function trainStep(net: Net, params: Parameter[], batch: Batch): void {
  net.zeroGrad();
  tidy(() => F.crossEntropy(net.call(batch.x), batch.y).backward());
  noGrad(() => tidy(() => F.foreach.add_(params, params.map((p) => p.grad!), -0.01)));
}

const CIFAR: TransformSpec[] = [{ name: 'randomCrop', size: 32, padding: 4 }, { name: 'randomHorizontalFlip' }];
const NORM: TransformSpec = { name: 'normalize', stats: 'cifar10' };
const PIPELINES: [string, TransformSpec[]][] = [
  ['normalize only', [NORM]],
  ['CIFAR: crop 32 pad 4 + flip + normalize', [...CIFAR, NORM]],
  ['CIFAR + random erasing', [...CIFAR, NORM, { name: 'randomErasing' }]],
  ['CIFAR + RandAugment(2, 9)', [...CIFAR, { name: 'randAugment' }, NORM]],
  ['CIFAR + mixup/cutmix', [...CIFAR, NORM, { name: 'mixupCutmix', numClasses: 10 }]],
  ['randomResizedCrop 32 + flip + normalize', [{ name: 'randomResizedCrop', size: 32 }, { name: 'randomHorizontalFlip' }, NORM]],
];

function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const batchSize = arg('batch', 128), rounds = arg('rounds', 15), threads = arg('threads', 2);
setNumThreads(threads);
manualSeed(0);
const data = synthetic({ count: batchSize, shape: [3, 32, 32], numClasses: 10 });
const raw = data.getBatch(Array.from({ length: batchSize }, (_, i) => i));
const net = new Net();
const params = net.parameters();
const stepInput = compose([NORM])(raw, true);

/** Times the training step and each pipeline, round after round: ms per round of each. */
function convkitRounds(): { step: number[]; pipelines: number[][] } {
  const step: number[] = [];
  const augTimes = PIPELINES.map(() => [] as number[]);
  const pipelines = PIPELINES.map(([, specs]) => compose(specs));
  for (let r = 0; r < rounds + 2; r++) {
    const s = timeIt(() => trainStep(net, params, stepInput));
    if (r >= 2) step.push(s);
    pipelines.forEach((p, k) => {
      const t = timeIt(() => {
        const out = p(raw, true);
        if (out.x !== raw.x) out.x.dispose();
        if (out.y !== raw.y) out.y.dispose();
      });
      if (r >= 2) augTimes[k]!.push(t);
    });
  }
  return { step, pipelines: augTimes };
}

// one round of sides: convkit's rounds are timed within its side, torchvision's (5) within its script
const sides = await sideBySide(1, convkitRounds,
  (alloc) => runPython<Record<string, number>>('data_augment.py', [batchSize, 5, threads], threads, alloc));
const [ck] = sides.convkit;
const [glibc] = sides.pytorch.glibc, [tcmalloc] = sides.pytorch.tcmalloc;
const step = median(ck.step);
emit('data_augment', [{
  title: `augmentation of a batch of ${batchSize} 3x32x32 uint8 images, ${threads} threads, median of ${rounds} rounds; ` +
    `one training step of a small ResNet-style net (forward + backward + SGD) takes ${step.toFixed(1)} ms; ${convkitSetup()}`,
  headers: ['pipeline', 'convkit, batched (ms)', '% of a training step', ...pytorchHeaders(' (ms)', 'torchvision per image'), VS_BEST],
  rows: PIPELINES.map(([name], k) => {
    const ms = median(ck.pipelines[k]!);
    const ref = [glibc[name], tcmalloc[name]].filter((v): v is number => v !== undefined);
    const refs = ref.length === 2 ? [...ref, vsBest(ms, ref, 'lower')] : ['-', '-', '-'];
    return [name, ms, `${((100 * ms) / step).toFixed(1)}%`, ...refs];
  }),
}]);
