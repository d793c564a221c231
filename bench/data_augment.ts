// What augmentation costs next to training: batched augmentation pipelines (the CIFAR recipe,
// + random erasing, + RandAugment, mixup/cutmix, Inception crops) against one training step of a
// small ResNet-style net on the same batch, timed alternately in one process so both see the
// same machine; and torchvision's per-image transforms on the same batches for reference.
//   node dist-dev/bench/data_augment.js [--batch 128] [--rounds 15] [--threads 2] [--json out.json]
import { performance } from 'node:perf_hooks';
import { F, manualSeed, noGrad, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import type { Parameter } from '../src/nn/index.js';
import { Net } from './small_net.js';
import { compose, synthetic, type Batch, type TransformSpec } from '../src/data/index.js';
import { arg, emit, median, runPython } from './common.js';

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

const stepTimes: number[] = [];
const augTimes = PIPELINES.map(() => [] as number[]);
const pipelines = PIPELINES.map(([, specs]) => compose(specs));
for (let r = 0; r < rounds + 2; r++) {
  const s = timeIt(() => trainStep(net, params, stepInput));
  if (r >= 2) stepTimes.push(s);
  pipelines.forEach((p, k) => {
    const t = timeIt(() => {
      const out = p(raw, true);
      if (out.x !== raw.x) out.x.dispose();
      if (out.y !== raw.y) out.y.dispose();
    });
    if (r >= 2) augTimes[k]!.push(t);
  });
}
const py = runPython<Record<string, number>>('data_augment.py', [batchSize, 5, threads], threads);
const step = median(stepTimes);
emit('data_augment', [{
  title: `augmentation of a batch of ${batchSize} 3x32x32 uint8 images, ${threads} threads, median of ${rounds} rounds; ` +
    `one training step of a small ResNet-style net (forward + backward + SGD) takes ${step.toFixed(1)} ms`,
  headers: ['pipeline', 'convkit, batched (ms)', '% of a training step', 'torchvision, per image (ms)'],
  rows: PIPELINES.map(([name], k) => {
    const ms = median(augTimes[k]!);
    const ref = py[name];
    return [name, ms, `${((100 * ms) / step).toFixed(1)}%`, ref === undefined ? '-' : ref];
  }),
}]);
