// The bf16 timing probe behind `bf16: 'auto'`: it leaves the model, its gradients and the random
// generator as they were, and the Trainer records its decision in recipe.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, rand, randint, randn, setNumThreads, tidy } from '../../src/engine/index.js';
import { createModel } from '../../src/models/index.js';
import { cpuHasBf16 } from '../../src/engine/index.js';
import { Trainer, probeBf16, type ClassifierModule, type Recipe, type TrainerEvent } from '../../src/train/index.js';
import './tiny_model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-probe-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
setNumThreads(1);

test('probeBf16 times both precisions and leaves weights, BN statistics, gradients and the RNG untouched', () => {
  manualSeed(3);
  const model = createModel('tiny_cnn_dropout', { numClasses: 10, inChannels: 1 }) as ClassifierModule;
  const x = randn([16, 1, 28, 28]);
  const y = randint(0, 10, [16]);
  const before = new Map([...model.stateDict()].map(([k, t]) => [k, t.clone()] as const));
  manualSeed(7);
  const p = probeBf16(model, x, y, { channelsLast: false, steps: 2 });
  const next = rand([4]).toArray();
  manualSeed(7);
  assert.deepEqual(next, rand([4]).toArray(), 'the probe leaves the generator where it found it (dropout draws from it)');
  assert.ok(p.fp32Ms > 0 && p.bf16Ms > 0, JSON.stringify(p));
  assert.equal(p.bf16, p.bf16Ms * 1.1 < p.fp32Ms, 'bf16 only when 1.1x faster');
  assert.equal(probeBf16(model, x, y, { channelsLast: false, steps: 1, margin: 1e9 }).bf16, false, 'an impossible margin keeps fp32');
  const after = model.stateDict();
  for (const [k, t] of before) {
    assert.equal(tidy(() => t.to('float64').sub(after.get(k)!.to('float64')).abs().max().item()), 0, `${k} changed`);
  }
  assert.ok(model.parameters().every((q) => q.grad === null), 'no gradient is left behind');
  assert.equal(model.training, true);
  model.dispose();
});

test("Trainer: bf16 'auto' is timed where the CPU has native bf16, off elsewhere; recipe.json records the decision", async () => {
  const dir = path.join(tmp, 'auto');
  const base: Partial<Recipe> = {
    model: 'tiny_cnn', limitTrain: 256, limitTest: 64, batchSize: 64, epochs: 1, warmupEpochs: 0, threads: 1, reportImages: 0, outDir: dir,
  };
  const t = Trainer.create({ ...base, bf16: 'auto' });
  const probes: TrainerEvent[] = [];
  t.on((e) => { if (e.type === 'bf16Probe') probes.push(e); });
  await t.run();
  t.dispose();
  const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'recipe.json'), 'utf8')) as Recipe;
  assert.equal(typeof recipe.bf16, 'boolean');
  if (cpuHasBf16()) {
    assert.equal(probes.length, 1);
    assert.equal(recipe.bf16, (probes[0] as { bf16: boolean }).bf16);
  } else {
    assert.equal(probes.length, 0);
    assert.equal(recipe.bf16, false);
  }
  // an explicit setting is never probed
  const fixed = Trainer.create({ ...base, bf16: false, outDir: path.join(tmp, 'fixed') });
  let probed = false;
  fixed.on((e) => { probed ||= e.type === 'bf16Probe'; });
  await fixed.run();
  fixed.dispose();
  assert.equal(probed, false);
});
