// Structured pruning of every convolutional family of the zoo and of a user's own nn model: the
// coupled groups (residual adds, depthwise convolutions and their producers, SE gates,
// Inception's concatenations, flatten -> classifier) are pruned consistently, so the pruned
// model runs, its output shape is right, and its MACs (counted by analyze/, independently of the
// pruner's own count) drop to about the target. Rebuilding from the saved description gives the
// same architecture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cat, manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, Module, ReLU, Sigmoid, chain } from '../../src/nn/index.js';
import { createModel, modelEntry } from '../../src/models/index.js';
import { countMacs } from '../../src/analyze/macs.js';
import { pruneChannels } from '../../src/compress/index.js';

type M = Module<[Tensor], Tensor>;

function check(name: string, model: M, shape: number[], target: number, method: 'l1' | 'bn' = 'l1'): void {
  const before = countMacs(model as Module<[Tensor], unknown>, [1, ...shape.slice(1)]).total;
  const x = randn(shape);
  try {
    const r = pruneChannels(model as unknown as Module<unknown[], unknown>, x, { targetMacs: target, method });
    const after = countMacs(model as Module<[Tensor], unknown>, [1, ...shape.slice(1)]).total;
    assert.equal(r.macsBefore, before, `${name}: the pruner counts MACs as analyze/ does`);
    assert.equal(r.macsAfter, after, `${name}: the pruned model's MACs are the planned ones`);
    const frac = after / before;
    assert.ok(frac <= target + 1e-9 && frac > target - 0.12, `${name}: MACs ${(frac * 100).toFixed(1)}% for a target of ${target * 100}%`);
    assert.ok(Object.keys(r.layers).length > 0 && r.paramsAfter < r.paramsBefore, `${name}: layers shrank`);
    model.eval();
    const y = noGrad(() => tidy(() => model.call(x).shape));
    assert.deepEqual(y, [shape[0], 10], `${name}: output shape`);
    // training mode (auxiliary heads included) runs too
    model.train();
    noGrad(() => tidy(() => { model.call(x); }));
  } finally {
    x.dispose();
  }
}

// inception_v3's auxiliary head needs 299 px in training mode: built without it, at a quick size
const ZOO: [string, number, Record<string, unknown>?][] = [
  ['resnet20', 32], ['resnet18', 64], ['resnet50', 64], ['resnext50_32x4d', 64], ['mobilenet_v2', 64],
  ['efficientnet_b0', 64], ['efficientnet_v2_s', 64], ['googlenet', 64], ['inception_v3', 80, { auxLogits: false }], ['airbench_m', 28], ['airbench94', 32],
];

for (const [name, side, extra] of ZOO) {
  test(`${name}: pruned to half its MACs runs with the right output`, () => {
    manualSeed(0);
    const c = modelEntry(name).config.inputSize[0];
    const model = createModel(name, { numClasses: 10, inChannels: c, ...extra }) as unknown as M;
    try {
      check(name, model, [2, c, side, side], 0.5);
    } finally {
      model.dispose();
    }
  });
}

/** A user's model: a concat of two branches, an SE gate, a depthwise conv, flatten of a 2x2 map into the classifier. */
class UserNet extends Module {
  a = new Conv2d(3, 8, 3, { padding: 1 });
  b = new Conv2d(3, 8, 1);
  bn = new BatchNorm2d(16);
  dw = new Conv2d(16, 16, 3, { padding: 1, groups: 16 });
  se1 = new Conv2d(16, 4, 1);
  se2 = new Conv2d(4, 16, 1);
  gate = new Sigmoid();
  pool = new AdaptiveAvgPool2d([2, 2]);
  relu = new ReLU();
  fc = new Linear(64, 10);
  forward(x: Tensor): Tensor {
    const c = this.relu.call(this.bn.call(cat([this.a.call(x), this.b.call(x)], 1)));
    const d = this.dw.call(c);
    const s = chain(d, (t) => t.mean([2, 3], true), this.se1, this.relu, this.se2, this.gate);
    return chain(d.mul(s), this.pool, (t) => t.flatten(1), this.fc);
  }
}

test('a user\'s nn model (concat, SE, depthwise, flatten of a 2x2 map) prunes with BN importance', () => {
  manualSeed(1);
  const model = new UserNet() as unknown as M;
  try {
    check('UserNet', model, [2, 3, 8, 8], 0.6, 'bn');
    const m = model as unknown as UserNet;
    assert.equal(m.fc.inFeatures, m.dw.outChannels * 4, 'the classifier reads 4 features per kept channel');
    assert.equal(m.bn.numFeatures, m.a.outChannels + m.b.outChannels, 'the concat\'s BN follows both branches');
    assert.equal(m.dw.groups, m.dw.inChannels, 'the depthwise conv stays depthwise');
    assert.equal(m.se2.outChannels, m.dw.outChannels, 'the SE gate matches the gated channels');
  } finally {
    model.dispose();
  }
});
