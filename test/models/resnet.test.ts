// The ResNet family against its references, all in one oracle run: every torchvision ResNet,
// ResNeXt and Wide ResNet, the paper's CIFAR ResNets (test/helpers/ref_models.py), grayscale and
// class-count variants, training mode and gradients; then input checks and options.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { F, manualSeed, noGrad, randint, randn, tidy } from '../../src/engine/index.js';
import { Conv2d, Linear } from '../../src/nn/index.js';
import {
  BasicBlock, Bottleneck, CifarResNet, ResNet, createModel, listModels, modelEntry, resnet18, resnet20, resnext50_32x4d,
  type Classifier, type ModelOptions,
} from '../../src/models/index.js';
import { checkGradients, checkParity, disposeResult, runOracle, type OracleCase, type OracleResult } from '../helpers/parity.js';

interface Case {
  oracle: OracleCase;
  /** the convkit model under test */
  model: string;
  opts?: ModelOptions & Record<string, unknown>;
  /** torchvision builds conv and fc weights from the same random stream as convkit does */
  sameInit?: boolean;
  /** the parameter count the paper or torchvision's documentation gives */
  published?: number;
}

const PUBLISHED: Record<string, number> = { resnet50: 25_557_032, resnet20: 269_722 };

// the largest ones run at 32 px with 10 classes: their time goes to building and moving weights
const BIG = new Set(['resnet101', 'resnet152', 'resnext101_32x8d', 'resnext101_64x4d', 'wide_resnet50_2', 'wide_resnet101_2']);
const TORCHVISION = listModels('resnet').filter((e) => e.config.torchvision).map((e) => e.name);
const CIFAR = listModels('resnet').filter((e) => !e.config.torchvision).map((e) => e.name);

const cases: Case[] = [
  ...TORCHVISION.map((name, seed): Case => BIG.has(name)
    ? { model: name, opts: { numClasses: 10 }, oracle: { id: name, name, seed, kwargs: { num_classes: 10 }, input: [1, 3, 32, 32] } }
    : { model: name, sameInit: true, published: PUBLISHED[name], oracle: { id: name, name, seed, input: [2, 3, 64, 64] } }),
  ...CIFAR.map((name, i): Case => ({
    model: name, sameInit: true, published: PUBLISHED[name], oracle: { id: name, name, seed: 100 + i, builder: `ref_models.cifar_${name}`, input: [2, 3, 32, 32] },
  })),
  {
    model: 'resnet18', opts: { inChannels: 1, numClasses: 10 },
    oracle: { id: 'resnet18_gray', name: 'resnet18', seed: 200, builder: 'ref_models.tv_in_channels', kwargs: { arch: 'resnet18', in_channels: 1, num_classes: 10 }, input: [2, 1, 64, 64] },
  },
  {
    model: 'resnet20', opts: { inChannels: 1, numClasses: 7 },
    oracle: { id: 'resnet20_gray', name: 'resnet20', seed: 201, builder: 'ref_models.cifar_resnet20', kwargs: { in_channels: 1, num_classes: 7 }, input: [3, 1, 28, 28] },
  },
  {
    model: 'resnet18', opts: { numClasses: 10 },
    oracle: { id: 'resnet18_train', name: 'resnet18', seed: 300, kwargs: { num_classes: 10 }, input: [4, 3, 32, 32], train: true, backward: true },
  },
  {
    model: 'resnet20', sameInit: true,
    oracle: { id: 'resnet20_train', name: 'resnet20', seed: 302, builder: 'ref_models.cifar_resnet20', input: [8, 3, 32, 32], train: true, backward: true },
  },
];

let refs = new Map<string, OracleResult>();
const report: string[] = [];

before(() => {
  const t = Date.now();
  refs = runOracle(cases.map((c) => c.oracle));
  console.log(`oracle: ${cases.length} cases in ${((Date.now() - t) / 1000).toFixed(1)} s`);
});

after(() => {
  for (const r of refs.values()) disposeResult(r);
  console.log(report.join('\n'));
});

/** convkit's conv and fc weights equal torchvision's when both start from the same seed. */
function assertSameInit(model: Classifier, ref: OracleResult, id: string): void {
  const state = model.stateDict();
  tidy(() => {
    for (const [name, m] of model.namedModules()) {
      if (!(m instanceof Conv2d || m instanceof Linear)) continue;
      for (const key of [`${name}.weight`, ...(m.bias ? [`${name}.bias`] : [])]) {
        assert.ok(state.get(key)!.equal(ref.state.get(key)!), `${id}: initial ${key} differs from the reference's with the same seed`);
      }
    }
  });
}

for (const c of cases) {
  const { id, seed = 0, train = false } = c.oracle;
  test(`parity: ${id}`, () => {
    const ref = refs.get(id)!;
    manualSeed(seed);
    const model = createModel(c.model, c.opts);
    try {
      if (c.sameInit && !train) assertSameInit(model, ref, id);
      // ResNet-50: torchvision's documented 25,557,032; ResNet-20 (option A, 10 classes): the paper's 0.27 M
      if (c.published) assert.equal(model.numParameters(), c.published, `${id}: published parameter count`);
      const [err] = checkParity(model, ref, id, 1e-4, { train, seed });
      let line = `${id}: ${model.numParameters().toLocaleString('en-US')} parameters, output max rel err ${err.toExponential(2)}`;
      if (c.oracle.backward) {
        // sum(o^2)/2 backward in training mode: every parameter gets PyTorch's gradient
        assert.equal(ref.grads.size, model.parameters().length, `${id}: every parameter has a gradient in PyTorch`);
        line += `, gradients max rel err ${checkGradients(model, ref, id, 1e-3, { train, seed }).toExponential(2)}`;
      }
      report.push(line);
    } finally {
      model.dispose();
      disposeResult(ref);
      refs.delete(id);
    }
  });
}

test('every torchvision ResNet-family model is in the parity table', () => {
  assert.deepEqual([...TORCHVISION].sort(), [
    'resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50', 'resnext101_32x8d', 'resnext101_64x4d', 'resnext50_32x4d',
    'wide_resnet101_2', 'wide_resnet50_2',
  ]);
  assert.deepEqual([...CIFAR].sort(), ['resnet110', 'resnet20', 'resnet32', 'resnet44', 'resnet56']);
});

test('the published parameter counts are checked', () => {
  assert.deepEqual(cases.filter((c) => c.published).map((c) => c.model).sort(), ['resnet20', 'resnet50']);
});

test('configs: ImageNet models at 224 with ImageNet statistics, CIFAR ones at 32 with CIFAR statistics', () => {
  const r50 = modelEntry('resnet50').config;
  assert.deepEqual([r50.family, r50.inputSize, r50.mean, r50.std, r50.interpolation, r50.cropPct, r50.torchvision],
    ['resnet', [3, 224, 224], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 'bilinear', 0.875, true]);
  const r20 = modelEntry('resnet20').config;
  assert.deepEqual([r20.family, r20.inputSize, r20.mean, r20.std, r20.torchvision],
    ['resnet', [3, 32, 32], [0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616], false]);
  for (const e of listModels('resnet')) assert.ok(e.config.paper && e.config.minInputSize > 0, `${e.name}: paper and minInputSize`);
});

test('a wrong input shape names the model, the expected shape and the one found', () => {
  const m = resnet18({ numClasses: 10 }).eval();
  const c = resnet20().eval();
  try {
    const cases: [Classifier, number[], string][] = [
      [m, [1, 1, 64, 64], 'resnet18: expected an input of shape [N, 3, H, W] with H, W >= 32, found [1, 1, 64, 64]'],
      [m, [1, 3, 16, 40], 'resnet18: expected an input of shape [N, 3, H, W] with H, W >= 32, found [1, 3, 16, 40]'],
      [m, [3, 64, 64], 'resnet18: expected an input of shape [N, 3, H, W] with H, W >= 32, found [3, 64, 64]'],
      [c, [2, 3, 2, 2], 'resnet20: expected an input of shape [N, 3, H, W] with H, W >= 4, found [2, 3, 2, 2]'],
    ];
    for (const [model, shape, message] of cases) {
      tidy(() => assert.throws(() => noGrad(() => model.call(randn(shape))), { message }));
    }
  } finally {
    m.dispose();
    c.dispose();
  }
});

test('a cross-entropy backward in training mode gives every parameter a finite gradient', () => {
  manualSeed(7);
  const m = resnet20().train();
  try {
    tidy(() => {
      const y = m.call(randn([4, 3, 28, 28]));
      F.crossEntropy(y, randint(0, 10, [4])).backward();
      for (const [name, p] of m.namedParameters()) {
        const g = p.grad;
        assert.ok(g, `${name}: no gradient`);
        assert.deepEqual(g.shape, p.shape, `${name}: gradient shape`);
        assert.ok(g.isfinite().all().item(), `${name}: non-finite gradient`);
      }
    });
  } finally {
    m.dispose();
  }
});

test('zeroInitResidual zeroes the last BN of every block; options reach the blocks', () => {
  // a one-block-per-stage ResNeXt 32x4d: the options of resnext50_32x4d at a fraction of its size
  const x = new ResNet(Bottleneck, [1, 1, 1, 1], { groups: 32, widthPerGroup: 4, zeroInitResidual: true, numClasses: 3 });
  const blocks = x.modules().filter((b) => b instanceof Bottleneck) as Bottleneck[];
  assert.equal(blocks.length, 4);
  for (const b of blocks) assert.equal(b.bn3.weight!.abs().sum().item(), 0);
  assert.equal(x.bn1.weight!.sum().item(), 64, 'other BN weights stay at one');
  assert.equal(blocks[0].conv2.groups, 32);
  assert.equal(blocks[0].conv2.outChannels, 128, 'ResNeXt-50 32x4d: 32 groups of 4 channels at 64 planes');
  assert.equal(x.fc.outFeatures, 3);
  x.dispose();
  const c = resnet20({ zeroInitResidual: true });
  const basic = c.modules().filter((x) => x instanceof BasicBlock) as BasicBlock[];
  assert.equal(basic.length, 9);
  for (const b of basic) assert.equal(b.bn2.weight!.abs().sum().item(), 0);
  assert.ok(c instanceof CifarResNet);
  c.dispose();
  assert.throws(() => resnext50_32x4d({ groups: 8 }), /resnext50_32x4d: groups is fixed at 32 by the architecture, got 8/);
  assert.throws(() => createModel('resnet18', { groups: 2 }), /BasicBlock only supports groups=1/);
});

test('dropRate drops features before fc in training only', () => {
  manualSeed(3);
  const m = resnet20({ dropRate: 0.5 });
  try {
    tidy(() => noGrad(() => {
      const x = randn([4, 3, 32, 32]);
      m.eval();
      const a = m.call(x);
      const b = m.call(x);
      assert.ok(a.equal(b), 'eval is deterministic');
      m.train();
      const c = m.call(x);
      assert.ok(!c.allclose(m.call(x)), 'training applies dropout');
    }));
  } finally {
    m.dispose();
  }
});
