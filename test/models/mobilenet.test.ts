// MobileNetV2 against torchvision 0.14: names and order, parameter counts (and the published
// one), initialisation, eval outputs at three widths, train-mode outputs and gradients; then
// options, input errors and memory release.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { Conv2d, Linear } from '../../src/nn/index.js';
import { createModel, modelEntry } from '../../src/models/registry.js';
import { MobileNetV2, mobilenetV2 } from '../../src/models/mobilenet.js';
import { checkGradients, checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';

type Case = OracleCase & { opts: Record<string, number> };
const CASES: Case[] = [
  { id: 'default', name: 'mobilenet_v2', input: [1, 3, 64, 64], seed: 1, opts: {} },
  { id: 'w0.5', name: 'mobilenet_v2', kwargs: { width_mult: 0.5, num_classes: 10 }, input: [1, 3, 64, 64], seed: 2, opts: { widthMult: 0.5, numClasses: 10 } },
  { id: 'w1.4', name: 'mobilenet_v2', kwargs: { width_mult: 1.4, num_classes: 10 }, input: [1, 3, 64, 64], seed: 3, opts: { widthMult: 1.4, numClasses: 10 } },
  // dropout at its default 0.2: the same seed gives the same mask
  { id: 'train', name: 'mobilenet_v2', kwargs: { num_classes: 10 }, input: [4, 3, 64, 64], train: true, seed: 4, opts: { numClasses: 10 } },
  { id: 'train_nodrop', name: 'mobilenet_v2', kwargs: { num_classes: 10, dropout: 0 }, input: [2, 3, 64, 64], train: true, seed: 5, opts: { numClasses: 10, dropRate: 0 } },
  // gradients in eval mode: in train mode a BN bias feeding another train-mode BN has a zero gradient up to rounding
  { id: 'grad', name: 'mobilenet_v2', kwargs: { num_classes: 10 }, input: [2, 3, 64, 64], seed: 6, backward: true, opts: { numClasses: 10 } },
];

let oracle: Map<string, OracleResult>;
const report: string[] = [];
before(() => {
  oracle = runOracle(CASES);
});
after(() => {
  for (const r of oracle?.values() ?? []) disposeResult(r);
  if (report.length) console.log(`mobilenet_v2 parity with torchvision 0.14 (max |error| / max |output|):\n${report.join('\n')}`);
});

describe('mobilenet_v2 parity with torchvision 0.14', () => {
  for (const c of CASES) {
    test(`${c.id}: names, order, counts, init, ${c.train ? 'train' : 'eval'} outputs${c.backward ? ', gradients' : ''}`, () => {
      const ref = oracle.get(c.id)!;
      oracle.delete(c.id);
      manualSeed(c.seed!);
      const model = createModel(c.name, c.opts);
      try {
        // the oracle randomises only BN, so convs and the classifier still hold torchvision's initialisation
        for (const [name, m] of model.namedModules()) {
          if (!(m instanceof Conv2d || m instanceof Linear)) continue;
          for (const [k, p] of m.ownParameters()) {
            assert.ok(p.equal(ref.state.get(`${name}.${k}`)!), `${c.id}: initial ${name}.${k} differs from torchvision's`);
          }
        }
        if (c.id === 'default') assert.equal(model.numParameters(), 3_504_872, "torchvision's published parameter count");
        const [err] = checkParity(model, ref, c.id, 1e-4, c);
        report.push(`  ${c.id.padEnd(13)} ${err.toExponential(2)}  params ${model.numParameters().toLocaleString('en-US')}`);
        if (c.backward) report.push(`  ${c.id.padEnd(13)} grads ${checkGradients(model, ref, c.id, 1e-3, c).toExponential(2)} (worst parameter)`);
      } finally {
        model.dispose();
        disposeResult(ref);
      }
    });
  }
});

describe('mobilenet_v2 options and inputs', () => {
  test('grayscale stem, stochastic depth, validation', () => {
    const model = mobilenetV2({ inChannels: 1, numClasses: 4, dropRate: 0, dropPathRate: 0.2 });
    try {
      assert.deepEqual(model.stateDict().get('features.0.0.weight')!.shape, [32, 1, 3, 3]);
      const x = randn([2, 1, 40, 40]).keep();
      const run = (): number[] => tidy(() => noGrad(() => (model.call(x) as Tensor).toTypedArray() as unknown as number[]));
      model.eval();
      const a = [...run()];
      assert.deepEqual([...run()], a, 'eval is deterministic');
      model.train();
      manualSeed(0);
      const b = [...run()];
      assert.notDeepEqual(b, a, 'stochastic depth (and batch statistics) change training outputs');
      x.dispose();
      assert.throws(() => mobilenetV2({ widthMult: 0 }), /mobilenet_v2: widthMult must be a positive number/);
      assert.throws(() => mobilenetV2({ dropRate: 2 }), /mobilenet_v2: dropRate must be in \[0, 1\]/);
    } finally {
      model.dispose();
    }
  });

  test('bad inputs name the model and the shapes; intermediates are freed', () => {
    const model = new MobileNetV2({ numClasses: 3 }).eval();
    const seen: Tensor[] = [];
    const removers = model.namedModules().map(([, m]) => m.registerForwardHook((_m, _in, out) => { seen.push(out as Tensor); }));
    try {
      assert.throws(() => tidy(() => model.call(randn([1, 4, 32, 32]))), /mobilenet_v2: expected an input of shape \[N, 3, H, W\] with H, W >= 1, found \[1, 4, 32, 32\]/);
      let live = -1;
      tidy(() => noGrad(() => {
        const y = model.call(randn([1, 3, 32, 32]));
        live = seen.filter((t) => !t.isDisposed && t !== y).length;
      }));
      assert.equal(live, 0, `${live} intermediate activations are still alive after the forward pass`);
      assert.ok(seen.every((t) => t.isDisposed));
    } finally {
      for (const r of removers) r();
      model.dispose();
    }
  });

  test('registry config', () => {
    const cfg = modelEntry('mobilenet_v2').config;
    assert.equal(cfg.family, 'mobilenet');
    assert.deepEqual(cfg.inputSize, [3, 224, 224]);
    assert.ok(cfg.torchvision);
  });
});
