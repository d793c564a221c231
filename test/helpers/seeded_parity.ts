// Parity for models too big to ship through the oracle (hundreds of MB of weights each way):
// the oracle runs the case with "weights": false, and we rebuild the same weights from the seed.
// That works when a convkit model draws its initialisation from libtorch's generator exactly as
// torchvision does (same layers, same order, same init functions); tv_oracle.py's randomize() of
// the BN layers is then reproduced here, and the input the oracle drew next must equal ours, which
// proves both random streams stayed in step before any output is compared.
import assert from 'node:assert/strict';
import { manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { BatchNorm1d, BatchNorm2d, type Module } from '../../src/nn/index.js';
import { assertClose, type OracleResult } from './parity.js';

type Model = Module<[Tensor], Tensor | Tensor[]>;

/** tv_oracle.randomize(): BN running statistics and affine parameters, in module order. */
export function randomizeLikeOracle(model: Model): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof BatchNorm1d || m instanceof BatchNorm2d)) continue;
      const buffers = new Map(m.ownBuffers());
      const mean = buffers.get('running_mean');
      const variance = buffers.get('running_var');
      if (!mean || !variance) continue;
      mean.uniform_(-0.2, 0.2);
      variance.uniform_(0.5, 1.5);
      if (m.weight && m.bias) {
        m.weight.uniform_(0.5, 1.5);
        m.bias.uniform_(-0.2, 0.2);
      }
    }
  });
}

/**
 * Builds the model under the case's seed, randomizes it as the oracle did, checks that the input
 * drawn next equals the oracle's, then compares state-dict keys, parameter count and outputs.
 * Returns each output's max error relative to its scale. The model is disposed afterwards.
 */
export function checkSeededParity(
  build: () => Model, ref: OracleResult, id: string, rtol = 1e-4, c: { seed?: number; train?: boolean; input: number[] },
): number[] {
  manualSeed(c.seed ?? 0);
  const model = build();
  try {
    assert.deepEqual([...model.stateDict().keys()], ref.keys, `${id}: state-dict keys and order`);
    assert.equal(model.numParameters(), ref.numParams, `${id}: parameter count`);
    randomizeLikeOracle(model);
    const x = randn(c.input);
    try {
      assert.ok(x.equal(ref.input), `${id}: the input drawn after building differs from the oracle's: the model's initialisation does not draw from the generator as torchvision's does`);
      model.train(c.train ?? false);
      manualSeed((c.seed ?? 0) + 1);
      const outs = tidy(() => noGrad(() => {
        const y = model.call(x);
        return Array.isArray(y) ? y : [y];
      }));
      assert.equal(outs.length, ref.outputs.length, `${id}: number of outputs`);
      const errors = outs.map((o, i) => assertClose(o, ref.outputs[i], `${id} output ${i}`, rtol));
      for (const o of outs) o.dispose();
      return errors;
    } finally {
      x.dispose();
    }
  } finally {
    model.dispose();
  }
}
