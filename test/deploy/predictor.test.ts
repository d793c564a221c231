// loadPredictor over an exported file: the metadata read back, top-k equal to convkit's own
// softmax, uint8 images preprocessed as the metadata says, and clear errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, noGrad, randn, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { Conv2d, Flatten, Linear, ReLU, Sequential, AdaptiveAvgPool2d, type Module } from '../../src/nn/index.js';
import { exportOnnx } from '../../src/export/index.js';
import { loadPredictor } from '../../src/deploy/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-deploy-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

manualSeed(5);
const model = new Sequential(new Conv2d(3, 6, 3, { padding: 1 }), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(6, 4)).eval();
const classes = ['a', 'b', 'c', 'd'];
const mean = [0.5, 0.4, 0.3];
const std = [0.2, 0.25, 0.3];
const file = path.join(dir, 'm.onnx');
exportOnnx(model as unknown as Module<never[], unknown>, randn([1, 3, 8, 8]), {
  file, metadata: { modelName: 'tiny', classNames: classes, inputSize: [3, 8, 8], mean, std, resize: 8, crop: [8, 8], interpolation: 'bilinear' },
});

const softmaxOf = (x: Tensor): number[][] => noGrad(() => tidy(() => model.call(x).softmax(-1).toArray() as number[][]));

test('metadata, and top-k equal to the model\'s own softmax', async () => {
  const p = await loadPredictor(file, { threads: 1 });
  try {
    assert.equal(p.engine, 'onnxruntime');
    assert.deepEqual(p.info, { modelName: 'tiny', classNames: classes, inputSize: [3, 8, 8], mean, std, resize: 8, crop: [8, 8], interpolation: 'bilinear', opset: 17 });
    const x = randn([3, 3, 8, 8]);
    const got = await p.predict(x, { top: 2 });
    const ref = softmaxOf(x);
    got.forEach((row, i) => {
      assert.equal(row.length, 2);
      const order = ref[i].map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0]);
      assert.deepEqual(row.map((r) => r.index), [order[0][1], order[1][1]]);
      assert.deepEqual(row.map((r) => r.label), [classes[order[0][1]], classes[order[1][1]]]);
      row.forEach((r, k) => assert.ok(Math.abs(r.probability - order[k][0]) < 1e-5));
    });
  } finally {
    await p.dispose();
  }
});

test('uint8 images are scaled, normalised, resized and cropped from the metadata', async () => {
  const p = await loadPredictor(file);
  try {
    const pixels = Uint8Array.from({ length: 3 * 8 * 8 }, (_, i) => (i * 37) % 256);
    const [viaImages] = await p.predict([{ data: pixels, channels: 3, height: 8, width: 8 }], { top: 4 });
    // by hand: x / 255, minus mean, over std
    const byHand = tensor(Float32Array.from(pixels, (v, i) => (v / 255 - mean[Math.floor(i / 64)]) / std[Math.floor(i / 64)]), { shape: [1, 3, 8, 8] });
    const ref = softmaxOf(byHand)[0];
    for (const r of viaImages) assert.ok(Math.abs(r.probability - ref[r.index]) < 1e-5);
    // a plain colour stays that colour through resize and crop, whatever the image's size
    const flat = (h: number, w: number): Uint8Array => Uint8Array.from({ length: 3 * h * w }, (_, i) => [200, 100, 30][Math.floor(i / (h * w))]);
    const [small] = await p.predict([{ data: flat(8, 8), channels: 3, height: 8, width: 8 }], { top: 4 });
    const [large] = await p.predict(tensor(flat(20, 13), { shape: [1, 3, 20, 13] }), { top: 4 });
    large.forEach((r, k) => { assert.equal(r.index, small[k].index); assert.ok(Math.abs(r.probability - small[k].probability) < 1e-5); });
  } finally {
    await p.dispose();
  }
});

test('bad input and bad files get errors that say what was expected', async () => {
  const p = await loadPredictor(file);
  try {
    await assert.rejects(p.predict(randn([1, 3, 9, 9])), /takes \[N, 3, 8, 8\], got \[1, 3, 9, 9\]/);
    await assert.rejects(p.predict([{ data: new Uint8Array(64), channels: 1, height: 8, width: 8 }]), /takes 3-channel images, got 1/);
  } finally {
    await p.dispose();
  }
  await assert.rejects(loadPredictor(path.join(dir, 'weights.safetensors')), /weights\.safetensors: no such file or folder/);
});
