// The training state of a checkpoint (its JSON half) is outside input like any file: a field of
// the wrong type or a missing one must fail the resume with the file and the field named, not
// with a TypeError deep in the trainer, nor with a resume that silently does nothing.
import { CheckpointError } from './checkpoint.js';
import { resolveRecipe, RecipeError } from './recipe.js';
import {
  anyStr, bool, describeValue, fieldsOf, finite, firstProblem, int, listOf, num, numList, obj, orNull, pairOf, type Spec,
} from './checks.js';
import type { TrainState } from './trainer.js';

const count = int(0);
// Losses and rates are NaN after a diverged step, which JSON writes as null.
const real = orNull(finite);

const EPOCH_RECORD: Spec = {
  epoch: int(1), step: count, trainLoss: real, trainAcc: real, valLoss: real, valAcc: real, valTop5: real,
  emaAcc: real, emaLoss: real, lr: real, imagesPerSec: real, epochSeconds: real, rssMB: real, peakRssMB: real,
};

const STATE: Spec = {
  epoch: count,
  batch: count,
  step: count,
  recipe: obj,
  // their own loadStateDict checks them in depth (naming what does not fit the run)
  optimizer: obj,
  schedule: obj,
  ema: orNull(fieldsOf({ updates: count, decay: num(0, 1) })),
  loader: { seed: count, epoch: count, batch: count, batchSize: int(1), numBatches: int(1), trainSize: int(1) },
  partial: orNull(fieldsOf({ lossSum: real, correct: count, seen: count, seconds: real })),
  bestAcc: num(-1, 1),
  bestEpoch: count,
  history: listOf(fieldsOf(EPOCH_RECORD), 'a list of epoch records'),
  lrTrace: listOf(pairOf(real, 'a pair [step, lr]'), 'a list of [step, lr] pairs'),
  classes: listOf(anyStr, 'a list of class names'),
  normalization: { mean: numList, std: numList },
  finished: bool,
};

function fieldError(file: string, field: string, expected: string, found: unknown): CheckpointError {
  return new CheckpointError(file, `training state field "${field}" must be ${expected}, found ${describeValue(found)}`);
}

/**
 * The training state `meta` of checkpoint `file`, checked field by field (the recipe as a recipe
 * file is, the position against the recipe). Throws a CheckpointError naming the field.
 */
export function checkTrainState(file: string, meta: unknown): TrainState {
  const p = firstProblem(meta, STATE);
  if (p) throw fieldError(file, p.field || '(the whole state)', p.expected, p.found);
  const m = meta as TrainState;
  try {
    resolveRecipe(m.recipe);
  } catch (e) {
    if (e instanceof RecipeError) throw new CheckpointError(file, `training state field "recipe": ${e.message}`, { cause: e });
    throw e;
  }
  if (m.epoch > m.recipe.epochs) throw fieldError(file, 'epoch', `at most the recipe's ${m.recipe.epochs} epochs`, m.epoch);
  if (m.batch > 0 && m.batch >= m.loader.numBatches) {
    throw fieldError(file, 'batch', `below loader.numBatches (${m.loader.numBatches})`, m.batch);
  }
  return m;
}
