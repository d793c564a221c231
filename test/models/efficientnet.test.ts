// EfficientNet B0-B7 and V2 S/M/L against torchvision 0.14: state-dict names and order,
// parameter counts (and torchvision's published ones), initialisation, eval outputs, train-mode
// outputs (BN batch statistics, and with the same seed the same dropout and stochastic-depth
// masks), gradients, input errors and memory release.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Conv2d, Linear } from '../../src/nn/index.js';
import { F, manualSeed, noGrad, randn, randint, tidy, type Tensor } from '../../src/engine/index.js';
import { createModel, listModels, modelEntry } from '../../src/models/registry.js';
import { EfficientNet, efficientnetB0, efficientnetV2S } from '../../src/models/efficientnet.js';
import { checkGradients, checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';
import { checkSeededParity } from '../helpers/seeded_parity.js';

// torchvision 0.14's weights meta (num_params), for the default 1000 classes
const PUBLISHED: Record<string, number> = {
  efficientnet_b0: 5_288_548,
  efficientnet_b1: 7_794_184,
  efficientnet_b2: 9_109_994,
  efficientnet_b3: 12_233_232,
  efficientnet_b4: 19_341_616,
  efficientnet_b5: 30_389_784,
  efficientnet_b6: 43_040_704,
  efficientnet_b7: 66_347_960,
  efficientnet_v2_s: 21_458_488,
  efficientnet_v2_m: 54_139_356,
  efficientnet_v2_l: 118_515_272,
};
const NAMES = Object.keys(PUBLISHED);
// These ship their weights from the oracle (and check our initialisation against them); the
// bigger ones (330 M parameters together) are rebuilt from the seed instead (seeded_parity.ts).
const SHIPPED = new Set(['efficientnet_b0', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'efficientnet_v2_s']);

type Case = OracleCase & { weights?: boolean; opts?: Record<string, number> };
// Eval parity at a reduced input, each model at its default 1000 classes: the same build then
// also checks the published count (the classifier is a few % of these models).
const EVAL_CASES: Case[] = NAMES.map((name, i) => ({ id: name, name, input: [1, 3, 64, 64], seed: 100 + i, weights: SHIPPED.has(name) }));
const TRAIN_CASES: Case[] = [
  // dropout and stochastic depth at their defaults: with the same seed the oracle and we draw the same masks
  { id: 'b0_train', name: 'efficientnet_b0', kwargs: { num_classes: 10 }, input: [4, 3, 64, 64], train: true, seed: 7, opts: { numClasses: 10 } },
  // no dropout, no stochastic depth: BN batch statistics
  {
    id: 'b0_train_nodrop', name: 'efficientnet_b0', builder: 'ref_efficientnet.build',
    kwargs: { arch: 'efficientnet_b0', num_classes: 10, stochastic_depth_prob: 0, dropout: 0 },
    input: [2, 3, 64, 64], train: true, seed: 8, opts: { numClasses: 10, dropRate: 0, dropPathRate: 0 },
  },
  // gradients of every parameter, in eval mode: in train mode the gradient of a BN bias that feeds
  // (through convs only) another train-mode BN is zero up to rounding, and no relative tolerance fits
  { id: 'b0_grad', name: 'efficientnet_b0', kwargs: { num_classes: 10 }, input: [2, 3, 64, 64], seed: 9, backward: true, opts: { numClasses: 10 } },
];

let oracle: Map<string, OracleResult>;
const report: string[] = [];

before(() => {
  oracle = runOracle([...EVAL_CASES, ...TRAIN_CASES]);
});
after(() => {
  for (const r of oracle?.values() ?? []) disposeResult(r);
  if (report.length) console.log(`parity with torchvision 0.14 (max |error| / max |output|):\n${report.join('\n')}`);
});

/** Our freshly initialised convs and linears equal torchvision's under the same seed (the oracle randomises only BN). */
function assertSameInit(model: EfficientNet, ref: OracleResult, id: string): void {
  const names = new Set(model.namedModules().filter(([, m]) => m instanceof Conv2d || m instanceof Linear).map(([n]) => n));
  let checked = 0;
  for (const [key, t] of model.stateDict()) {
    const owner = key.slice(0, key.lastIndexOf('.'));
    if (!names.has(owner)) continue;
    assert.ok(t.equal(ref.state.get(key)!), `${id}: initial ${key} differs from torchvision's under the same seed`);
    checked++;
  }
  assert.ok(checked > 0);
}

function take(id: string): OracleResult {
  const r = oracle.get(id)!;
  oracle.delete(id);
  return r;
}

describe('efficientnet parity with torchvision 0.14', () => {
  for (const c of EVAL_CASES) {
    test(`${c.name}: names, order, counts, ${c.weights ? 'init, ' : ''}eval outputs`, () => {
      const ref = take(c.id);
      try {
        let params = 0;
        const build = (): EfficientNet => {
          const m = createModel(c.name) as EfficientNet;
          params = m.numParameters();
          return m;
        };
        let err: number;
        if (c.weights) {
          manualSeed(c.seed!);
          const model = build();
          try {
            assertSameInit(model, ref, c.id);
            [err] = checkParity(model, ref, c.id, 1e-4, c);
          } finally {
            model.dispose();
          }
        } else {
          [err] = checkSeededParity(build, ref, c.id, 1e-4, c);
        }
        assert.equal(params, PUBLISHED[c.name], `${c.name}: torchvision's published parameter count`);
        report.push(`  ${c.name.padEnd(18)} eval  ${err.toExponential(2)}  params ${params.toLocaleString('en-US')}${c.weights ? '' : ' (seeded)'}`);
      } finally {
        disposeResult(ref);
      }
    });
  }

  for (const c of TRAIN_CASES) {
    const what = c.backward ? 'eval outputs and parameter gradients'
      : `train-mode outputs (BN batch statistics, ${c.opts!.dropRate === 0 ? 'no dropout' : 'same dropout and drop-path masks'})`;
    test(`${c.id}: ${what}`, () => {
      const ref = take(c.id);
      const model = createModel(c.name, c.opts);
      try {
        const [err] = checkParity(model, ref, c.id, 1e-4, c);
        report.push(`  ${c.id.padEnd(18)} ${c.train ? 'train' : 'eval '} ${err.toExponential(2)}`);
        if (c.backward) {
          const gradErr = checkGradients(model, ref, c.id, 1e-3, c);
          report.push(`  ${c.id.padEnd(18)} grads ${gradErr.toExponential(2)} (worst parameter)`);
        }
      } finally {
        model.dispose();
        disposeResult(ref);
      }
    });
  }
});

describe('efficientnet training and input handling', () => {
  test('backward in training mode (dropout, stochastic depth, BN batch statistics) reaches every parameter', () => {
    const model = efficientnetB0({ numClasses: 10 });
    try {
      model.train();
      tidy(() => {
        const x = randn([2, 3, 64, 64]);
        const y = randint(0, 10, [2]);
        F.crossEntropy(model.call(x), y).backward();
      });
      for (const [name, p] of model.namedParameters()) {
        assert.ok(p.grad, `efficientnet_b0: ${name} has no gradient`);
        assert.ok(tidy(() => p.grad!.isfinite().all().item()), `efficientnet_b0: ${name} has a non-finite gradient`);
      }
    } finally {
      model.dispose();
    }
  });

  test('grayscale stem and options', () => {
    const model = createModel('efficientnet_b0', { inChannels: 1, numClasses: 7, dropRate: 0.1, dropPathRate: 0.3 }) as EfficientNet;
    try {
      assert.deepEqual(model.stateDict().get('features.0.0.weight')!.shape, [32, 1, 3, 3]);
      const shape = tidy(() => noGrad(() => model.eval().call(randn([2, 1, 48, 40])).shape));
      assert.deepEqual(shape, [2, 7]);
      const last = model.features.at(7).children().at(-1)!.children()[1] as { p?: number };
      // stochastic depth grows linearly: the last of 16 blocks gets 0.3 * 15 / 16
      assert.ok(Math.abs((last.p ?? -1) - (0.3 * 15) / 16) < 1e-12);
      assert.throws(() => createModel('efficientnet_b0', { dropRate: 1.5 }), /efficientnet_b0: dropRate must be in \[0, 1\]/);
      assert.throws(() => createModel('efficientnet_b1', { widthMult: -1 }), /efficientnet_b1: widthMult must be a positive number/);
    } finally {
      model.dispose();
    }
  });

  test('bad inputs name the model, the expected and the found shape', () => {
    const b0 = efficientnetB0({ numClasses: 3 }).eval();
    const v2 = efficientnetV2S({ numClasses: 3 }).eval();
    try {
      const run = (m: EfficientNet, shape: number[]): Tensor => tidy(() => noGrad(() => m.call(randn(shape))));
      assert.throws(() => run(b0, [1, 1, 64, 64]), /efficientnet_b0: expected an input of shape \[N, 3, H, W\] with H, W >= 1, found \[1, 1, 64, 64\]/);
      assert.throws(() => run(b0, [3, 64, 64]), /efficientnet_b0: expected .*found \[3, 64, 64\]/);
      assert.throws(() => run(v2, [1, 3, 32, 64]), /efficientnet_v2_s: expected an input of shape \[N, 3, H, W\] with H, W >= 33, found \[1, 3, 32, 64\]/);
      assert.equal(modelEntry('efficientnet_v2_s').config.minInputSize, 33);
    } finally {
      b0.dispose();
      v2.dispose();
    }
  });

  test('a forward pass frees its intermediate activations; tidy frees the rest', () => {
    const model = efficientnetB0({ numClasses: 5 }).eval();
    const seen: Tensor[] = [];
    const removers = model.namedModules().map(([, m]) => m.registerForwardHook((_m, _in, out) => { seen.push(out as Tensor); }));
    try {
      const x = randn([1, 3, 64, 64]).keep();
      let live = -1;
      tidy(() => noGrad(() => {
        const y = model.call(x);
        live = seen.filter((t) => !t.isDisposed && t !== y).length;
      }));
      assert.equal(live, 0, `${live} intermediate activations are still alive after the forward pass`);
      assert.ok(seen.every((t) => t.isDisposed), 'tidy left tensors alive');
      assert.ok(!x.isDisposed, 'the input was freed');
      x.dispose();
    } finally {
      for (const r of removers) r();
      model.dispose();
    }
  });

  test('registry configs', () => {
    const names = listModels('efficientnet').map((e) => e.name).sort();
    assert.deepEqual(names, [...NAMES].sort());
    const sizes = NAMES.map((n) => modelEntry(n).config.inputSize[1]);
    assert.deepEqual(sizes, [224, 240, 260, 300, 380, 456, 528, 600, 384, 480, 480]);
    assert.equal(modelEntry('efficientnet_b0').config.interpolation, 'bicubic');
    assert.ok(NAMES.every((n) => modelEntry(n).config.torchvision));
  });
});
