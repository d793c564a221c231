// Every family splits into forwardFeatures (the feature map before pooling; for sequence models
// the pooled encoding before the classifier) and forwardHead (timm's forward_head), and
// forward(x) is exactly forwardHead(forwardFeatures(x)). One or two models per family, small inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tidy, type Tensor } from '../../src/engine/index.js';
import { createModel, listModels } from '../../src/models/index.js';

interface Split { forwardFeatures(x: Tensor): Tensor; forwardHead(f: Tensor): Tensor }

// [model, input, expected feature shape]
const CASES: [string, number[], number[]][] = [
  ['resnet18', [2, 3, 64, 64], [2, 512, 2, 2]],
  ['resnext50_32x4d', [1, 3, 32, 32], [1, 2048, 1, 1]],
  ['resnet20', [2, 3, 16, 16], [2, 64, 4, 4]],
  ['efficientnet_b0', [2, 3, 64, 64], [2, 1280, 2, 2]],
  ['efficientnet_v2_s', [1, 3, 33, 33], [1, 1280, 2, 2]],
  ['mobilenet_v2', [2, 3, 64, 64], [2, 1280, 2, 2]],
  ['googlenet', [2, 3, 64, 64], [2, 1024, 2, 2]],
  ['inception_v3', [1, 3, 75, 75], [1, 2048, 1, 1]],
  ['airbench_s', [2, 1, 28, 28], [2, 128, 3, 3]],
  ['lstm_classifier', [2, 28, 28], [2, 128]],
  ['transformer_classifier', [2, 28, 28], [2, 64]],
];

test('the cases cover every registered family', () => {
  const covered = new Set(CASES.map(([name]) => listModels().find((e) => e.name === name)!.config.family));
  assert.deepEqual([...covered].sort(), [...new Set(listModels().map((e) => e.config.family))].sort());
});

for (const [name, input, featureShape] of CASES) {
  test(`${name}: forward(x) == forwardHead(forwardFeatures(x)), features ${JSON.stringify(featureShape)}`, () => {
    const model = createModel(name, input.length === 4 ? { inChannels: input[1], numClasses: 7 } : { numClasses: 7 });
    try {
      model.eval();
      const split = model as unknown as Split;
      assert.equal(typeof split.forwardFeatures, 'function', `${name} has forwardFeatures`);
      assert.equal(typeof split.forwardHead, 'function', `${name} has forwardHead`);
      tidy(() => {
        const x = randn(input);
        const f = split.forwardFeatures(x);
        assert.deepEqual(f.shape, featureShape);
        const viaHead = split.forwardHead(f);
        const direct = model.call(x) as Tensor;
        assert.deepEqual(direct.shape, [input[0], 7]);
        assert.ok(direct.sub(viaHead).abs().max().item() <= 1e-5, `${name}: forward and forwardHead(forwardFeatures) differ`);
        assert.ok(!f.isDisposed, 'forwardHead leaves the caller\'s features alone');
      });
    } finally {
      model.dispose();
    }
  });
}
