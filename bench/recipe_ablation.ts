// Issue 13's time-to-accuracy study: the whole `convkit train` command on Fashion-MNIST, each
// recipe variant over several seeds, with its final test top-1 (as training prints it; with
// --ema, the average's), wall time of the whole command and peak memory (the process's maximum RSS).
//   node dist-dev/bench/recipe_ablation.js [--variants default,e16,...] [--seeds 0,1,2] [--limit-train N] [--json out.json]
//   (--limit-train: a subset of the training images, to check the script quickly)
import { arg, emit, listArg, listChoiceArg } from './common.js';
import { trainOnce } from './train_cli.js';

const flipCrop = (padding: number) => [{ name: 'randomHorizontalFlip' }, { name: 'randomCrop', size: 28, padding }];
const CROP = JSON.stringify(flipCrop(2));
const CROP1 = JSON.stringify(flipCrop(1));
const CROP_ERASE = JSON.stringify([...flipCrop(2), { name: 'randomErasing' }]);
const W48 = 'modelOptions={"widths":[48,96,256]}';
// Each variant changes the default recipe (airbench_m, 9 epochs, flip, label smoothing 0.2,
// flip TTA, bf16 where it is faster) by the flags it lists.
const VARIANTS: Record<string, { flags: string[]; what: string }> = {
  default: { flags: [], what: 'the default recipe (9 epochs)' },
  e12: { flags: ['--epochs', '12'], what: '12 epochs' },
  e16: { flags: ['--epochs', '16'], what: '16 epochs' },
  'e16-crop': { flags: ['--epochs', '16', '--augment', CROP], what: '16 epochs, random 2-px crops' },
  'e16-crop-tr': { flags: ['--epochs', '16', '--augment', CROP, '--eval-translate', '1'], what: '16 epochs, crops, translate TTA 1 px' },
  'e20-crop-tr': { flags: ['--epochs', '20', '--augment', CROP, '--eval-translate', '1'], what: '20 epochs, crops, translate TTA 1 px' },
  'e24-crop-tr': { flags: ['--epochs', '24', '--augment', CROP, '--eval-translate', '1'], what: '24 epochs, crops, translate TTA 1 px' },
  'e28-crop-tr': { flags: ['--epochs', '28', '--augment', CROP, '--eval-translate', '1'], what: '28 epochs, crops, translate TTA 1 px' },
  'e28-crop1-tr': { flags: ['--epochs', '28', '--augment', CROP1, '--eval-translate', '1'], what: '28 epochs, 1-px crops, translate TTA 1 px' },
  'e28-crop1-tr-w48': { flags: ['--epochs', '28', '--augment', CROP1, '--eval-translate', '1', '--set', W48], what: '28 epochs, 1-px crops, translate TTA 1 px, widths 48/96/256' },
  'e28-crop-tr-ls0.1': { flags: ['--epochs', '28', '--augment', CROP, '--eval-translate', '1', '--label-smoothing', '0.1'], what: '28 epochs, crops, translate TTA 1 px, label smoothing 0.1' },
  'e20-crop-tr-re': { flags: ['--epochs', '20', '--augment', CROP_ERASE, '--eval-translate', '1'], what: '20 epochs, crops, random erasing, translate TTA 1 px' },
  'e20-crop-tr-w48': { flags: ['--epochs', '20', '--augment', CROP, '--eval-translate', '1', '--set', W48], what: '20 epochs, crops, translate TTA 1 px, widths 48/96/256' },
  'e16-ema': { flags: ['--epochs', '16', '--ema', '0.999'], what: '16 epochs, EMA 0.999' },
  'e16-ls0.1': { flags: ['--epochs', '16', '--label-smoothing', '0.1'], what: '16 epochs, label smoothing 0.1' },
  'e16-fp32': { flags: ['--epochs', '16', '--bf16', 'off'], what: '16 epochs, fp32' },
  'e12-wide': { flags: ['--epochs', '12', '--set', 'modelOptions={"widths":[64,128,256]}'], what: '12 epochs, widths 64/128/256' },
  'e9-noflip-tta': { flags: ['--set', 'evalFlip=false'], what: 'the default without flip TTA' },
};

const limit = arg('limit-train', 0);
const names = listChoiceArg('variants', Object.keys(VARIANTS)) ?? Object.keys(VARIANTS);
const seeds = (listArg('seeds') ?? ['0', '1', '2']).map(Number);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const rows: (string | number)[][] = [];
for (const n of names) {
  const runs = seeds.map((s) => {
    const r = trainOnce([...VARIANTS[n].flags, ...(limit ? ['--limit-train', String(limit)] : [])], s);
    console.error(`${n} seed ${s}: ${(100 * r.acc).toFixed(2)}% in ${r.seconds.toFixed(0)} s, peak ${r.peakMB.toFixed(0)} MB`);
    return r;
  });
  // the mean to two places, as each seed's: the variants differ by tenths
  rows.push([n, VARIANTS[n].what, runs.map((r) => (100 * r.acc).toFixed(2)).join(' / '), (100 * mean(runs.map((r) => r.acc))).toFixed(2),
    mean(runs.map((r) => r.seconds)), Math.max(...runs.map((r) => r.peakMB))]);
}
emit('recipe_ablation', [{
  title: `convkit train on Fashion-MNIST${limit ? ` (${limit} training images)` : ''}, whole command, seeds ${seeds.join(', ')}: final test top-1 (as training prints it; the EMA's with --ema), wall time, peak RSS`,
  headers: ['variant', 'change from the default', 'top-1 per seed (%)', 'mean top-1 (%)', 'mean wall (s)', 'peak RSS (MB)'],
  rows,
}]);
