// The Trainer on real Fashion-MNIST subsets with a tiny CNN: learning, exact resume (at an
// epoch boundary and mid-epoch, with dropout, EMA, mixup and clipping), flat memory, transfer
// learning (head replacement, frozen backbone), and clear errors for bad recipes and files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuHasBf16 } from '../../src/engine/index.js';
import { Trainer, finalizeRecipe, resolveRecipe, loadRecipeFile, RecipeError, type Recipe } from '../../src/train/index.js';
import { readSafetensors } from '../../src/io/index.js';
import type { StateDict, Tensor } from '../../src/engine/index.js';
import './tiny_model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-trainer-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// one thread: deterministic and fast on a busy 2-core machine
const BASE: Partial<Recipe> = {
  model: 'tiny_cnn', limitTrain: 2000, limitTest: 500, batchSize: 64, lr: 0.1, warmupEpochs: 0,
  bf16: false, channelsLast: false, threads: 1, reportImages: 8,
};

const readLog = (dir: string): Record<string, number>[] =>
  fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

function sameTensors(a: StateDict, b: StateDict): { maxDiff: number; keys: number } {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let maxDiff = 0;
  for (const [k, t] of a) {
    const d = t.to('float64').sub(b.get(k)!.to('float64')).abs();
    maxDiff = Math.max(maxDiff, t.numel() ? d.max().item() : 0);
    d.dispose();
  }
  return { maxDiff, keys: a.size };
}

test('loss falls and accuracy rises above chance on Fashion-MNIST', async () => {
  const dir = path.join(tmp, 'learn');
  const t = Trainer.create({ ...BASE, epochs: 2, outDir: dir });
  const events: string[] = [];
  t.on((e) => events.push(e.type));
  const r = await t.run();
  t.dispose();
  assert.equal(r.interrupted, false);
  assert.equal(r.epochs, 2);
  const log = readLog(dir);
  assert.equal(log.length, 2);
  assert.ok(log[1].trainLoss < log[0].trainLoss, `train loss ${log[0].trainLoss} -> ${log[1].trainLoss}`);
  assert.ok(log[1].valAcc > 0.25, `test accuracy ${log[1].valAcc} should be well above chance (0.1)`);
  for (const key of ['epoch', 'trainLoss', 'trainAcc', 'valLoss', 'valAcc', 'valTop5', 'lr', 'imagesPerSec', 'epochSeconds', 'rssMB']) {
    assert.ok(key in log[0], `log.jsonl lacks ${key}`);
  }
  for (const f of ['recipe.json', 'last.safetensors', 'best.safetensors', 'model.safetensors', 'report.html']) {
    assert.ok(fs.existsSync(path.join(dir, f)), `missing ${f}`);
  }
  assert.deepEqual([...new Set(events)].sort(), ['checkpoint', 'end', 'epochEnd', 'epochStart', 'evalStart', 'start', 'step']);
  const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8')) as Recipe;
  assert.equal(recipe.model, 'tiny_cnn');
  assert.equal(recipe.bf16, false, 'recipe.json holds decided settings, not "auto"');
  assert.equal(recipe.outDir, dir);
});

const RESUME: Partial<Recipe> = {
  ...BASE, model: 'tiny_cnn_dropout', limitTrain: 640, limitTest: 200, epochs: 2, ema: 0.9, mixup: 0.2, clipGradNorm: 2,
  warmupEpochs: 0.5, augment: [{ name: 'randomCrop', size: 28, padding: 2 }, { name: 'randomHorizontalFlip' }],
};

test('an interrupted and resumed run ends bit-identical to an uninterrupted one', async () => {
  const straight = path.join(tmp, 'straight');
  let t = Trainer.create({ ...RESUME, outDir: straight });
  await t.run();
  t.dispose();

  // stop at the end of epoch 1 (an epoch-boundary checkpoint), then mid-epoch 2 (batch 4 of 10)
  const resumed = path.join(tmp, 'resumed');
  t = Trainer.create({ ...RESUME, outDir: resumed }, { stopAfter: (e, b) => e === 0 && b === 10 });
  let r = await t.run();
  t.dispose();
  assert.equal(r.interrupted, true);
  assert.equal(r.epochs, 1);
  t = Trainer.resume(resumed, { stopAfter: (e, b) => e === 1 && b === 4 });
  assert.equal(t.epoch, 1);
  r = await t.run();
  t.dispose();
  assert.equal(r.interrupted, true);
  const mid = readSafetensors(path.join(resumed, 'last.safetensors'));
  mid.forEach((x) => x.dispose());
  t = Trainer.resume(path.join(resumed, 'last.safetensors'));
  assert.deepEqual([t.epoch, t.batch], [1, 4]);
  r = await t.run();
  t.dispose();
  assert.equal(r.interrupted, false);

  const a = readSafetensors(path.join(straight, 'last.safetensors'));
  const b = readSafetensors(path.join(resumed, 'last.safetensors'));
  const { maxDiff, keys } = sameTensors(a, b);
  assert.ok([...a.keys()].some((k) => k.startsWith('ema.')) && [...a.keys()].some((k) => k.startsWith('optim.')));
  assert.ok(keys > 20);
  assert.ok(maxDiff <= 1e-6, `weights, optimizer and EMA state differ by ${maxDiff}`);
  [...a.values(), ...b.values()].forEach((x) => x.dispose());
  const la = readLog(straight);
  const lb = readLog(resumed);
  assert.equal(lb.length, 2);
  for (const k of ['trainLoss', 'trainAcc', 'valLoss', 'valAcc', 'emaAcc', 'lr'] as const) {
    assert.ok(Math.abs(la[1][k] - lb[1][k]) <= 1e-6, `epoch 2 ${k}: ${la[1][k]} vs ${lb[1][k]}`);
  }
  assert.ok(la[1].emaAcc !== null, 'EMA weights are evaluated every epoch');
});

test('memory stays flat from epoch to epoch (RSS recorded per epoch)', async () => {
  const dir = path.join(tmp, 'memory');
  // test-time augmentation off: the final epoch's TTA evaluation runs more forwards per batch
  // once, which the allocator caches; this test is about the training loop's epoch-to-epoch memory
  const t = Trainer.create({ ...BASE, limitTrain: 1280, limitTest: 256, epochs: 5, outDir: dir, ema: 0.99, evalFlip: false, evalTranslate: 0 });
  await t.run();
  t.dispose();
  const rss = readLog(dir).map((l) => l.rssMB);
  // allocator warm-up happens in the first epochs; after that growth means a leak
  const growth = rss[4] - rss[1];
  assert.ok(growth < 40, `RSS grew ${growth.toFixed(1)} MB from epoch 2 to 5: ${rss.map((v) => v.toFixed(0)).join(', ')}`);
});

test('transfer learning: a new head for a new class count, a frozen backbone, a separate lr', async () => {
  const src = path.join(tmp, 'learn', 'model.safetensors');
  const dir = path.join(tmp, 'transfer');
  const t = Trainer.create({
    ...BASE, dataset: 'synthetic', inChannels: 1, numClasses: 4, imageSize: [28, 28], limitTrain: 256, limitTest: 64, epochs: 1,
    init: src, freezeBackboneEpochs: 1, backboneLr: 0.01, outDir: dir, augment: [],
  });
  assert.deepEqual(t.groups.map((g) => [g.label, g.lr]), [['backbone', 0.01], ['backbone (no decay)', 0.01], ['head', 0.1], ['head (no decay)', 0.1]]);
  await t.run();
  const init = readSafetensors(src);
  const now = new Map(t.model.stateDict());
  assert.ok(now.get('conv1.weight')!.equal(init.get('conv1.weight')!), 'the frozen backbone keeps the initial weights');
  assert.ok(now.get('bn1.running_mean')!.equal(init.get('bn1.running_mean')!), 'frozen BN statistics stay fixed');
  assert.deepEqual(now.get('fc.weight')!.shape, [4, 32]);
  t.dispose();
  init.forEach((x) => x.dispose());

  assert.throws(
    () => Trainer.create({ ...BASE, dataset: 'synthetic', inChannels: 1, numClasses: 4, imageSize: [28, 28], limitTrain: 64, limitTest: 64, init: src, replaceHead: false, outDir: path.join(tmp, 'keep-head') }),
    /fc\.weight \(expected \[4, 32\], found \[10, 32\]\)/,
  );
});

test('bad recipes and bad files fail clearly, before training', () => {
  assert.throws(() => resolveRecipe({ learningRate: 0.1 } as unknown as Partial<Recipe>), (e: Error) =>
    e instanceof RecipeError && /unknown key "learningRate"/.test(e.message) && /valid keys are: model, modelOptions/.test(e.message));
  assert.throws(() => resolveRecipe({ epochs: 0 }), /"epochs" must be an integer in 1\.\.1000000, got 0/);
  assert.throws(() => resolveRecipe({ bf16: 'yes' } as unknown as Partial<Recipe>), /"bf16" must be true, false or 'auto'/);
  assert.throws(() => Trainer.create({ ...BASE, model: 'no_such_net', outDir: path.join(tmp, 'x1') }), /unknown model 'no_such_net': known models are/);
  assert.throws(() => Trainer.create({ ...BASE, augment: [{ name: 'randomTwist' }], outDir: path.join(tmp, 'x2') }), /unknown transform 'randomTwist'/);
  assert.throws(() => Trainer.create({ ...BASE, dataset: 'mnist', dataRoot: path.join(tmp, 'nowhere'), outDir: path.join(tmp, 'x3') }), /nowhere/);
  // a run folder is not overwritten by accident
  assert.throws(() => Trainer.create({ ...BASE, outDir: path.join(tmp, 'learn') }), /already holds a run/);
  // a checkpoint of another architecture: the error lists the keys
  assert.throws(() => Trainer.create({ ...BASE, model: 'resnet20', init: path.join(tmp, 'learn', 'model.safetensors'), outDir: path.join(tmp, 'x4') }),
    /does not fit model CifarResNet: missing keys \(\d+\): .*layer1\.0\.conv1\.weight.*unexpected keys \(\d+\): .*conv2\.weight/s);
  // a truncated checkpoint cannot be resumed, and says why
  const bad = path.join(tmp, 'bad');
  fs.mkdirSync(bad);
  const good = fs.readFileSync(path.join(tmp, 'learn', 'last.safetensors'));
  fs.writeFileSync(path.join(bad, 'last.safetensors'), good.subarray(0, good.length - 100));
  assert.throws(() => Trainer.resume(bad), /last\.safetensors.*(truncated|trailing|bytes)/s);
  fs.writeFileSync(path.join(bad, 'last.safetensors'), 'not a checkpoint at all');
  assert.throws(() => Trainer.resume(bad), /last\.safetensors/);
  assert.throws(() => Trainer.resume(path.join(tmp, 'learn', 'model.safetensors')), /not a convkit training checkpoint/);
});

test('recipe files: YAML and JSON, keys checked', () => {
  const yaml = path.join(tmp, 'r.yaml');
  fs.writeFileSync(yaml, 'model: tiny_cnn\nepochs: 3\naugment:\n  - randomHorizontalFlip\n  - randomCrop: {size: 28, padding: 4}\n');
  const r = resolveRecipe(loadRecipeFile(yaml));
  assert.equal(r.epochs, 3);
  assert.deepEqual(r.augment, [{ name: 'randomHorizontalFlip' }, { name: 'randomCrop', size: 28, padding: 4 }]);
  const json = path.join(tmp, 'r.json');
  fs.writeFileSync(json, JSON.stringify({ model: 'tiny_cnn', epoch: 3 }));
  assert.throws(() => loadRecipeFile(json), /r\.json: unknown key "epoch" \(did you mean "epochs"\?\)/);
  fs.writeFileSync(json, '{"model": ');
  assert.throws(() => loadRecipeFile(json), /not valid JSON/);
});

const shippedRecipe = (name: string): Recipe => resolveRecipe(loadRecipeFile(fileURLToPath(new URL(`../../../recipes/${name}`, import.meta.url))));
const changedKeys = (r: Recipe, from: Recipe): string[] =>
  (Object.keys(from) as (keyof Recipe)[]).filter((k) => JSON.stringify(r[k]) !== JSON.stringify(from[k])).sort();

test('recipes/fashion-mnist-10min.yaml is the default recipe with the ablation\'s three changes (28 epochs, crops, translate TTA)', () => {
  const r = shippedRecipe('fashion-mnist-10min.yaml');
  assert.deepEqual(changedKeys(r, resolveRecipe({})), ['augment', 'epochs', 'evalTranslate']);
  assert.deepEqual([r.epochs, r.evalTranslate], [28, 1]);
  assert.deepEqual(r.augment, [{ name: 'randomHorizontalFlip' }, { name: 'randomCrop', size: 28, padding: 2 }]);
});

test('recipes/fashion-mnist-95.yaml is the 10-minute recipe with widths 48/96/256 and 1-px crops (the e28-crop1-tr-w48 ablation)', () => {
  const r = shippedRecipe('fashion-mnist-95.yaml');
  assert.deepEqual(changedKeys(r, shippedRecipe('fashion-mnist-10min.yaml')), ['augment', 'modelOptions']);
  assert.deepEqual(r.modelOptions, { widths: [48, 96, 256] });
  assert.deepEqual(r.augment, [{ name: 'randomHorizontalFlip' }, { name: 'randomCrop', size: 28, padding: 1 }]);
});

test("'auto' settings are decided before the run: bf16 by the CPU, channels-last on", () => {
  const auto = resolveRecipe({ outDir: path.join(tmp, 'auto') });
  finalizeRecipe(auto);
  assert.equal(auto.bf16, cpuHasBf16() ? 'auto' : false, 'where bf16 is native, run() times it');
  assert.equal(auto.channelsLast, true);
  const fixed = resolveRecipe({ bf16: true, channelsLast: false, outDir: path.join(tmp, 'fixed') });
  finalizeRecipe(fixed);
  assert.equal(fixed.bf16, true);
  assert.equal(fixed.channelsLast, false);
});
