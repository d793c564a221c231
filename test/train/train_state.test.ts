// A checkpoint's training state is checked field by field before a resume uses any of it: each
// missing or mistyped field fails with the file and the field named, expected against found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensor } from '../../src/engine/index.js';
import { CheckpointError, saveCheckpoint } from '../../src/train/checkpoint.js';
import { checkTrainState } from '../../src/train/train_state.js';
import { Trainer } from '../../src/train/index.js';
import { validTrainState } from '../helpers/train_state.js';

const FILE = 'run/last.safetensors';

function refused(meta: unknown, ...patterns: RegExp[]): void {
  assert.throws(() => checkTrainState(FILE, meta), (e) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.ok(e.message.startsWith(`checkpoint ${FILE}: `), e.message);
    for (const p of patterns) assert.match(e.message, p);
    assert.ok(e.message.length < 1000, `a ${e.message.length}-character message`);
    return true;
  });
}

test('a valid training state passes unchanged', () => {
  const m = validTrainState();
  assert.equal(checkTrainState(FILE, m), m);
});

test('every top-level field, when missing, is named', () => {
  for (const field of Object.keys(validTrainState())) {
    const m = validTrainState();
    delete m[field];
    refused(m, new RegExp(`field "${field}(\\.[a-z]+)?" must be .*, found nothing \\(missing\\)`));
  }
});

test('fields of the wrong type name the field, what was expected and what was found', () => {
  const cases: [string, unknown, RegExp][] = [
    ['epoch', '3', /"epoch" must be an integer >= 0, found "3"/],
    ['step', -1, /"step" must be an integer >= 0, found -1/],
    ['finished', 'no', /"finished" must be true or false, found "no"/],
    ['history', [{ epoch: 'one' }], /"history" must be a list of epoch records \(element 0 must be an object whose "epoch" is an integer >= 1 \(found "one"\)/],
    ['lrTrace', [[1, 'x']], /"lrTrace" must be a list of \[step, lr\] pairs \(element 0/],
    ['partial', { lossSum: 1, correct: 'many', seen: 3, seconds: 1 }, /"partial" must be an object whose "correct" is an integer >= 0 \(found "many"\) or null/],
    ['ema', { updates: 3, decay: 7 }, /"ema" must be an object whose "decay" is a number >= 0 and <= 1/],
    ['classes', [1, 2], /"classes" must be a list of class names \(element 0 must be a string, found 1\)/],
    ['optimizer', [], /"optimizer" must be an object, found \[\]/],
  ];
  for (const [field, value, pattern] of cases) refused({ ...validTrainState(), [field]: value }, pattern);
  const m = validTrainState();
  (m.loader as Record<string, unknown>).batchSize = 0;
  refused(m, /"loader\.batchSize" must be an integer >= 1, found 0/);
  refused(null, /field "\(the whole state\)" must be an object, found null/);
});

test('the saved recipe is checked as a recipe file is, with its bounds', () => {
  const m = validTrainState();
  (m.recipe as Record<string, unknown>).threads = 100_000;
  refused(m, /field "recipe": recipe: "threads" must be an integer in 1\.\.1024 or null, got 100000/);
  (m.recipe as Record<string, unknown>).threads = null;
  (m.recipe as Record<string, unknown>).batchSize = 1e9;
  refused(m, /"batchSize" must be an integer in 1\.\.65536, got 1000000000/);
});

test('a position past the recipe is refused rather than resumed into nothing', () => {
  refused({ ...validTrainState(), epoch: 7 }, /"epoch" must be at most the recipe's 2 epochs, found 7/);
  refused({ ...validTrainState(), batch: 4 }, /"batch" must be below loader\.numBatches \(4\), found 4/);
});

test('Trainer.resume refuses a checkpoint with a broken training state before building anything', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-state-'));
  try {
    const file = path.join(dir, 'last.safetensors');
    const w = tensor([1, 2]);
    saveCheckpoint(file, { model: new Map([['w', w]]), meta: { ...validTrainState(), loader: 'none' } });
    w.dispose();
    assert.throws(() => Trainer.resume(dir), (e) => e instanceof CheckpointError && e.message.includes(file) && /"loader" must be an object, found "none"/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
