// A minimal training state that checkTrainState accepts, for tests that break it field by field.
import { resolveRecipe } from '../../src/train/recipe.js';

export function validTrainState(): Record<string, unknown> {
  return {
    epoch: 1, batch: 0, step: 4, recipe: resolveRecipe({ dataset: 'synthetic', epochs: 2 }),
    optimizer: { optimizer: 'SGD', paramGroups: [{ params: [0], lr: 0.1 }], state: {} },
    schedule: { kind: 'constant', lastEpoch: 4, stepCount: 4, baseLrs: [0.1], lastLr: [0.1], config: {} },
    ema: null, loader: { seed: 0, epoch: 1, batch: 0, batchSize: 256, numBatches: 4, trainSize: 1000 }, partial: null,
    bestAcc: 0.5, bestEpoch: 1, history: [], lrTrace: [[1, 0.1]], classes: ['a', 'b'],
    normalization: { mean: [0.5], std: [0.25] }, finished: false,
  };
}
