// The seeds' transfer-learning recipe in one command, with no internet: ImageNet EfficientNet-B0
// (a seeded torchvision state dict standing in for the published file, served from loopback),
// a frozen backbone, a new head, Fashion-MNIST resized to 224 px as a batch transform, the RGB
// stem adapted to gray images. And --image-size on a dataset of fixed-size images, unit by unit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tensor, tidy } from '../../src/engine/index.js';
import { encodePng, readPth, readSafetensors, parseSafetensorsHeader, sha256File } from '../../src/io/index.js';
import { fashionMnist } from '../../src/data/index.js';
import { buildRunData, evalLoader, limitDataset, resizeSpecs, trainLoader, type RunData } from '../../src/train/data.js';
import { repeatChannels } from '../../src/data/index.js';
import { IMAGENET_CLASSES, modelEntry } from '../../src/models/index.js';
import { readOnnxMetadata } from '../../src/export/index.js';
import { resolveRecipe } from '../../src/train/recipe.js';
import { openModelFile } from '../../src/train/eval_checkpoint.js';
import { startChildFileServer, type ChildFileServer } from '../helpers/file_server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MODELS = pathToFileURL(fileURLToPath(new URL('../../src/models/index.js', import.meta.url))).href;
const FILE = 'efficientnet_b0_rwightman-3dd342df.pth';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-pretrained-cli-'));
const served = path.join(tmp, 'served');
let server: ChildFileServer;

before(async () => {
  fs.mkdirSync(served);
  execFileSync('/usr/bin/python3', ['-c', `import sys, torch, torchvision
torch.manual_seed(0)
torch.save(torchvision.models.efficientnet_b0().state_dict(), sys.argv[1])`, path.join(served, FILE)], { stdio: ['ignore', 'ignore', 'inherit'] });
  // the CLI's --import registers the fixture's hash in place of torchvision's
  const sha = sha256File(path.join(served, FILE));
  fs.writeFileSync(path.join(tmp, 'fixture.mjs'), `import { registerPretrained, pretrainedEntry } from ${JSON.stringify(MODELS)};
registerPretrained({ ...pretrainedEntry('efficientnet_b0'), sha256Prefix: ${JSON.stringify(sha.slice(0, 16))} });\n`);
  server = await startChildFileServer(served);
});
after(() => {
  server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('--image-size and --in-channels on every dataset', () => {
  test('repeatChannels: gray images repeated, colour images passed, others refused', () => {
    tidy(() => {
      const t = repeatChannels({ channels: 3 });
      const x = tensor([1, 2, 3, 4]).reshape([1, 1, 2, 2]);
      const y = tensor([0]);
      assert.deepEqual(t.apply({ x, y }, true).x.toArray(), [[[[1, 2], [3, 4]], [[1, 2], [3, 4]], [[1, 2], [3, 4]]]]);
      const rgb = x.repeat([1, 3, 1, 1]);
      assert.equal(t.apply({ x: rgb, y }, false).x, rgb);
      assert.throws(() => t.apply({ x: x.repeat([1, 2, 1, 1]), y }, true), /repeatChannels: expected gray images \[N, 1, H, W\] \(or 3 channels\), got \[1, 2, 2, 2\]/);
    });
  });

  test('--in-channels 3 on Fashion-MNIST: the run sees RGB (repeated gray), normalised with 3 values from weights', async () => {
    const r = resolveRecipe({ dataset: 'fashion-mnist', inChannels: 3, pretrained: true, imageSize: [32, 32], limitTrain: 8, limitTest: 4, batchSize: 4, evalBatchSize: 4, prefetch: 0, augment: [] });
    const data = buildRunData(r, modelEntry('resnet18').config);
    try {
      assert.deepEqual(data.inputShape, [3, 28, 28]);
      assert.deepEqual(data.mean, [0.485, 0.456, 0.406]);
      for (const loader of [trainLoader(data, r, 10), evalLoader(data.eval, r, data.mean, data.std)]) {
        for await (const b of loader.batches(0)) {
          tidy(() => {
            assert.deepEqual(b.x.shape, [4, 3, 32, 32]);
            // the channels are the same image, each normalised with its own statistics
            const raw = b.x.mul(tensor(data.std).reshape([1, 3, 1, 1])).add(tensor(data.mean).reshape([1, 3, 1, 1]));
            assert.ok(raw.narrow(1, 0, 1).sub(raw.narrow(1, 2, 1)).abs().max().item() < 1e-5);
          });
          b.x.dispose();
          b.y.dispose();
        }
      }
    } finally {
      data.dispose();
    }
  });


  test('a batch resize first in the train and eval pipelines, except where images are decoded at the size', async () => {
    assert.deepEqual(resizeSpecs({ imageSize: [32, 48], dataset: 'fashion-mnist' }), [{ name: 'resize', size: [32, 48], mode: 'bilinear', antialias: true }]);
    assert.deepEqual(resizeSpecs({ imageSize: [32, 48], dataset: 'folder' }), []);
    assert.deepEqual(resizeSpecs({ imageSize: null, dataset: 'cifar10' }), []);
    const r = resolveRecipe({ dataset: 'fashion-mnist', imageSize: [32, 48], batchSize: 4, evalBatchSize: 4, prefetch: 0, augment: ['randomHorizontalFlip'] });
    const full = fashionMnist({ split: 'test' });
    try {
      const d = limitDataset(full, 8, 0, 1);
      const data = { train: d, eval: d, mean: [0.5], std: [0.5] } as unknown as RunData;
      for (const loader of [trainLoader(data, r, 10), evalLoader(d, r, [0.5], [0.5])]) {
        for await (const b of loader.batches(0)) {
          tidy(() => assert.deepEqual(b.x.shape, [4, 1, 32, 48]));
          b.x.dispose();
          b.y.dispose();
        }
      }
    } finally {
      full.dispose?.();
    }
  });
});

describe('convkit train --pretrained', () => {
  test('efficientnet_b0 on Fashion-MNIST at 224 px, backbone frozen, in one command', () => {
    const out = path.join(tmp, 'run');
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_WEIGHTS_URL: server.url, CONVKIT_NUM_THREADS: '2' };
    const r = spawnSync(process.execPath, [MAIN, 'train', '--model', 'efficientnet_b0', '--pretrained', '--dataset', 'fashion-mnist',
      '--image-size', '224,224', '--freeze-backbone-epochs', '1', '--limit-train', '64', '--limit-test', '64', '--epochs', '1',
      '--batch-size', '32', '--bf16', 'off', '--set', 'reportImages=0', '--import', path.join(tmp, 'fixture.mjs'), '--out-dir', out, '--json'],
    { encoding: 'utf8', env, cwd: tmp, timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /efficientnet_b0 \(EfficientNet_B0_Weights\.IMAGENET1K_V1\): 20\.5 MB \/ 20\.5 MB 100%/);
    assert.ok(fs.existsSync(path.join(tmp, 'cache', 'weights', FILE)));
    const meta = parseSafetensorsHeader(path.join(out, 'model.safetensors')).metadata!;
    assert.equal(meta.convkit_image_size, '[224,224]');
    assert.deepEqual(JSON.parse(meta.convkit_model_options!), { numClasses: 10, inChannels: 1 });
    // convkit eval and explain read the run's resolution back
    const opened = openModelFile(path.join(out, 'model.safetensors'));
    try {
      assert.deepEqual(opened.size, [224, 224]);
    } finally {
      opened.model.dispose();
    }
    // ImageNet's normalisation, averaged over RGB for gray images
    const norm = JSON.parse(meta.convkit_normalization!) as { mean: number[]; std: number[] };
    assert.ok(Math.abs(norm.mean[0] - (0.485 + 0.456 + 0.406) / 3) < 1e-9 && Math.abs(norm.std[0] - (0.229 + 0.224 + 0.225) / 3) < 1e-9);
    // the frozen backbone holds the file's weights; the stem is its RGB kernels summed
    const file = readPth(path.join(served, FILE));
    const trained = readSafetensors(path.join(out, 'model.safetensors'));
    try {
      tidy(() => {
        const stem = trained.get('features.0.0.weight')!;
        assert.deepEqual(stem.shape, [32, 1, 3, 3]);
        assert.ok(stem.sub(file.get('features.0.0.weight')!.sum(1, true)).abs().max().item() < 1e-6);
        for (const k of ['features.1.0.block.0.0.weight', 'features.7.0.block.3.0.weight']) {
          assert.ok(trained.get(k)!.sub(file.get(k)!).abs().max().item() === 0, k);
        }
        assert.deepEqual(trained.get('classifier.1.weight')!.shape, [10, 1280]);
      });
    } finally {
      for (const t of [...file.values(), ...trained.values()]) t.dispose();
    }
  });

  test('convkit weights: the cache state, the mirror URL and the path to put a file by hand', () => {
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_WEIGHTS_URL: `${server.url}/` };
    const r = spawnSync(process.execPath, [MAIN, 'weights', '--json'], { encoding: 'utf8', env, cwd: tmp });
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { model: string; cached: boolean; url: string; file: string }[];
    assert.equal(rows.length, 24);
    const b0 = rows.find((x) => x.model === 'efficientnet_b0')!;
    assert.deepEqual([b0.cached, b0.url, b0.file], [true, `${server.url}/${FILE}`, path.join(tmp, 'cache', 'weights', FILE)]);
    assert.equal(rows.find((x) => x.model === 'resnet50')!.cached, false);
    const table = spawnSync(process.execPath, [MAIN, 'weights', 'resnet50'], { encoding: 'utf8', env, cwd: tmp });
    assert.match(table.stdout, /resnet50 +ResNet50_Weights\.IMAGENET1K_V2 +80\.86% +no /);
    const bad = spawnSync(process.execPath, [MAIN, 'weights', 'resnet20', '--fetch'], { encoding: 'utf8', env, cwd: tmp });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /model 'resnet20' has no pretrained weights/);
  });

  test('convkit explain <name> --pretrained: the cached weights, ImageNet class names, the weights\' crop size', async () => {
    const img = path.join(tmp, 'img.png');
    const data = new Uint8Array(3 * 40 * 50).map((_, i) => (i * 37) % 256);
    fs.writeFileSync(img, await encodePng({ data, channels: 3, height: 40, width: 50 }));
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_WEIGHTS_URL: server.url, CONVKIT_NUM_THREADS: '2' };
    const r = spawnSync(process.execPath, [MAIN, 'explain', 'efficientnet_b0', '--pretrained', img, '-o', path.join(tmp, 'cam'), '--json',
      '--import', path.join(tmp, 'fixture.mjs')], { encoding: 'utf8', env, cwd: tmp, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /random weights/);
    const index = JSON.parse(r.stdout) as { images: { className: string; predicted: number; predictedName: string; input: string }[]; randomWeights?: boolean };
    assert.equal(index.images.length, 1);
    assert.equal(typeof index.images[0].predictedName, 'string');
    assert.ok(index.images[0].predicted >= 0 && index.images[0].predicted < 1000);
    const f32 = fs.readdirSync(path.join(tmp, 'cam')).find((f) => f.endsWith('.f32'))!;
    // the map is at the weights' evaluation crop (224 for EfficientNet-B0's V1 weights)
    assert.equal(fs.statSync(path.join(tmp, 'cam', f32)).size, 224 * 224 * 4);
  });

  test('convkit export and predict <name> --pretrained: ImageNet classes and preprocessing, the same top-5 on both engines', async () => {
    const img = path.join(tmp, 'photo.png');
    const data = new Uint8Array(3 * 300 * 260).map((_, i) => (i * 53 + (i >> 7)) % 256);
    fs.writeFileSync(img, await encodePng({ data, channels: 3, height: 300, width: 260 }));
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_WEIGHTS_URL: server.url, CONVKIT_NUM_THREADS: '2' };
    const fixture = ['--import', path.join(tmp, 'fixture.mjs')];
    const onnx = path.join(tmp, 'b0.onnx');
    const x = spawnSync(process.execPath, [MAIN, 'export', 'efficientnet_b0', '--pretrained', '-o', onnx, '--json', ...fixture], { encoding: 'utf8', env, cwd: tmp, timeout: 180_000 });
    assert.equal(x.status, 0, x.stderr);
    const meta = readOnnxMetadata(new Uint8Array(fs.readFileSync(onnx))).metadata;
    assert.equal((JSON.parse(meta.class_names) as string[]).length, 1000);
    assert.equal(JSON.parse(meta.class_names)[0], IMAGENET_CLASSES[0]);
    assert.deepEqual([JSON.parse(meta.resize), JSON.parse(meta.crop)], [256, [224, 224]]);
    const top = (model: string, extra: string[]): { label: string; index: number; probability: number }[] => {
      const r = spawnSync(process.execPath, [MAIN, 'predict', model, img, '--json', '--quiet', ...extra], { encoding: 'utf8', env, cwd: tmp, timeout: 180_000 });
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as { top: { label: string; index: number; probability: number }[] }).top;
    };
    const lt = top('efficientnet_b0', ['--pretrained', '--engine', 'libtorch', '--precision', 'fp32', ...fixture]);
    const ort = top(onnx, []);
    assert.deepEqual(lt.map((t) => t.index), ort.map((t) => t.index));
    assert.equal(lt[0].label, IMAGENET_CLASSES[lt[0].index]);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(lt[i].probability - ort[i].probability) < 1e-4);
    const bad = spawnSync(process.execPath, [MAIN, 'predict', 'resnet20', img, '--pretrained'], { encoding: 'utf8', env, cwd: tmp });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--pretrained: model 'resnet20' has no pretrained weights/);
  });

  test('a run on gray images repeated to RGB at another size: convkit eval repeats both and its figure', () => {
    const out = path.join(tmp, 'rgb');
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_NUM_THREADS: '2' };
    const t = spawnSync(process.execPath, [MAIN, 'train', '--model', 'resnet20', '--dataset', 'fashion-mnist', '--in-channels', '3', '--image-size', '36,36',
      '--limit-train', '64', '--limit-test', '64', '--epochs', '1', '--batch-size', '32', '--bf16', 'off', '--set', 'reportImages=4', '--out-dir', out, '--json'],
    { encoding: 'utf8', env, cwd: tmp, timeout: 120_000 });
    assert.equal(t.status, 0, t.stderr);
    const trained = JSON.parse(t.stdout) as { last: { valAcc: number; valLoss: number } };
    const e = spawnSync(process.execPath, [MAIN, 'eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--limit', '64', '--flip', '--json'],
      { encoding: 'utf8', env, cwd: tmp, timeout: 120_000 });
    assert.equal(e.status, 0, e.stderr);
    const evaluated = JSON.parse(e.stdout) as { top1: number; loss: number };
    assert.equal(evaluated.top1, trained.last.valAcc);
    assert.ok(Math.abs(evaluated.loss - trained.last.valLoss) <= 1e-4 * Math.max(1, Math.abs(trained.last.valLoss)), `${evaluated.loss} vs ${trained.last.valLoss}`);
  });

  test('--pretrained for a model without weights, and with --init, is a usage error', () => {
    const env = { ...process.env, CONVKIT_CACHE_DIR: path.join(tmp, 'cache2') };
    const a = spawnSync(process.execPath, [MAIN, 'train', '--model', 'resnet20', '--pretrained', '--dataset', 'synthetic', '--out-dir', path.join(tmp, 'x')], { encoding: 'utf8', env, cwd: tmp });
    assert.equal(a.status, 2, a.stderr);
    assert.match(a.stderr, /--pretrained: model 'resnet20' has no pretrained weights/);
    const b = spawnSync(process.execPath, [MAIN, 'train', '--model', 'resnet18', '--pretrained', '--init', 'w.pth', '--dry-run'], { encoding: 'utf8', env, cwd: tmp });
    assert.equal(b.status, 2, b.stderr);
    assert.match(b.stderr, /pretrained and init both give starting weights/);
  });
});
