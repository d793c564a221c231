// Issue 4's throughput benchmark: whole training epochs including data loading and
// augmentation (random crop with padding, horizontal flip, normalisation on batches), convkit
// against PyTorch (Python, on glibc's malloc and on tcmalloc) on the same libtorch, same model,
// batch and augmentation, in one run, the sides taking turns round after round.
// Each side reports the median epoch: resnet20 and airbench_m (the default recipe's model, with
// its recipe's batch of 256 and flip-only augmentation) run 1 epoch of 60k images, the short synthetic
// cases 3 epochs, so that one epoch's warm-up (first-touch page faults, oneDNN primitive
// creation; ~2 s for either side) does not stand for a whole run.
// Modes: fp32 (NCHW), fp32 channels-last, and bf16 autocast + channels-last where the CPU has
// native bfloat16 (AVX-512 BF16 / AMX); elsewhere bf16 is emulated and 10-20x slower on both
// sides, so it is left out unless --bf16 asks for it.
//   node dist-dev/bench/train_throughput.js [--threads 2] [--epochs N] [--cases airbench_m,resnet20,resnet18,efficientnet_b0]
//     [--modes fp32,fp32cl,bf16cl] [--rounds R] [--bf16] [--images N (every case's)]
//     [--convkit-alloc glibc|tcmalloc|jemalloc] [--convkit-cache on|off] [--json out.json]
import './preload.js';
import { performance } from 'node:perf_hooks';
import { F, autocast, emptyCache, manualSeed, setNumThreads, tidy } from '../src/engine/index.js';
import { DataLoader, fashionMnist, subset, synthetic, type Dataset } from '../src/data/index.js';
import { createModel } from '../src/models/index.js';
import { SGD } from '../src/train/optim/index.js';
import { cpuHasBf16 } from '../src/engine/cpu.js';
import { arg, convkitSetup, emit, listChoiceArg, median, pytorchHeaders, runPython, sideBySide, vsBest, VS_BEST } from './common.js';

/** pad: the random crop's padding (0: no crop, flip only) */
interface Case { model: string; channels: number; size: number; images: number; epochs: number; batch: number; pad: number }
const CASES: Record<string, Case> = {
  airbench_m: { model: 'airbench_m', channels: 1, size: 28, images: arg('images', 60000), epochs: 1, batch: 256, pad: 0 },
  resnet20: { model: 'resnet20', channels: 1, size: 28, images: arg('images', 60000), epochs: 1, batch: 128, pad: 2 },
  resnet18: { model: 'resnet18', channels: 3, size: 32, images: arg('images', 6400), epochs: 3, batch: 128, pad: 4 },
  efficientnet_b0: { model: 'efficientnet_b0', channels: 3, size: 64, images: arg('images', 3200), epochs: 3, batch: 128, pad: 4 },
};
type Mode = 'fp32' | 'fp32cl' | 'bf16cl';
const MODE_NAMES: Record<Mode, string> = { fp32: 'fp32', fp32cl: 'fp32 channels-last', bf16cl: 'bf16 autocast + channels-last' };

function dataset(c: Case): Dataset {
  if (c.size === 28) {
    const all = fashionMnist({ split: 'train' });
    return c.images >= all.length ? all : subset(all, Array.from({ length: c.images }, (_, i) => i));
  }
  return synthetic({ count: c.images, shape: [c.channels, c.size, c.size], numClasses: 10 });
}

async function convkitEpochs(c: Case, mode: Mode, epochs: number): Promise<number[]> {
  manualSeed(0);
  const model = createModel(c.model, { numClasses: 10, inChannels: c.channels });
  const cl = mode !== 'fp32';
  const bf16 = mode === 'bf16cl';
  if (cl) model.to({ memoryFormat: 'channelsLast' });
  model.train();
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const crop = c.pad > 0 ? [{ name: 'randomCrop', size: c.size, padding: c.pad }] : [];
  const loader = new DataLoader(dataset(c), {
    batchSize: c.batch, shuffle: true, dropLast: true,
    transform: [...crop, { name: 'randomHorizontalFlip' }, { name: 'normalize', mean: [0.5], std: [0.25] }],
  });
  const rates: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const t0 = performance.now();
    for await (const { x, y } of loader.batches(e)) {
      tidy(() => {
        const input = cl ? x.contiguous('channelsLast') : x;
        opt.zeroGrad();
        const loss = bf16 ? autocast(() => F.crossEntropy(model.call(input) as never, y)) : F.crossEntropy(model.call(input) as never, y);
        loss.backward();
        opt.step();
      });
      x.dispose();
      y.dispose();
    }
    rates.push((loader.numBatches * c.batch) / ((performance.now() - t0) / 1000));
  }
  model.dispose();
  emptyCache();  // the next case starts from an empty cache, as each Python case starts a new process
  return rates;
}

const threads = arg('threads', 2);
const rounds = arg('rounds', 1);
const names = listChoiceArg('cases', Object.keys(CASES)) ?? Object.keys(CASES);
const modes = listChoiceArg('modes', Object.keys(MODE_NAMES) as Mode[])
  ?? (cpuHasBf16() || process.argv.includes('--bf16') ? ['fp32', 'fp32cl', 'bf16cl'] : ['fp32', 'fp32cl']);
setNumThreads(threads);
const rows: (string | number)[][] = [];
for (const name of names) {
  const c = CASES[name];
  const epochs = arg('epochs', c.epochs);
  for (const mode of modes) {
    const sides = await sideBySide(rounds, () => convkitEpochs(c, mode, epochs),
      (alloc) => runPython<{ images_per_s: number[] }>('train_throughput.py',
        [threads, c.model, c.images, c.batch, c.size, c.channels, mode, epochs, c.pad], threads, alloc).images_per_s);
    const ck = median(sides.convkit.flat());
    const py = [median(sides.pytorch.glibc.flat()), median(sides.pytorch.tcmalloc.flat())];
    rows.push([`${c.model} ${c.channels}x${c.size}x${c.size}`, MODE_NAMES[mode], c.batch, `${c.images} x ${epochs} x ${rounds}`, ck, ...py, vsBest(ck, py, 'higher')]);
  }
}
emit('train_throughput', [{
  title: `training throughput, whole epochs incl. data loading and augmentation, ${threads} threads (images/s, median epoch); ${convkitSetup()}`,
  headers: ['model', 'precision', 'batch', 'images x epochs x rounds', 'convkit', ...pytorchHeaders(''), VS_BEST],
  rows,
}]);
