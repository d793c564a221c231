// Pretrained weights end to end with no internet: a real torchvision resnet18 state dict (seeded,
// BN statistics randomised) written by torch.save, served from a loopback server standing in for
// download.pytorch.org, registered with its real SHA-256; createModel('resnet18', {pretrained})
// downloads it into the cache and must give torchvision's output on the same input. Then the cache
// (reuse, a corrupt file, no network), the registry's data, and the stem adapted to gray images.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { fromBytes, noGrad, tidy, type Tensor } from '../../src/engine/index.js';
import {
  IMAGENET_CLASSES, TORCHVISION_VERSION, adaptInputConvWeight, createModel, loadModelWeights, listModels, listPretrained, loadPretrained, pretrainedEntry,
  pretrainedPath, registerPretrained, type Classifier, type PretrainedEntry,
} from '../../src/models/index.js';
import { sha256File } from '../../src/io/download.js';
import { startChildFileServer, type ChildFileServer } from '../helpers/file_server.js';
import { tensor } from '../../src/engine/index.js';
import type { Module } from '../../src/nn/index.js';

const PYTHON = '/usr/bin/python3';
const dir = fs.mkdtempSync(join(tmpdir(), 'convkit-pretrained-'));
const served = join(dir, 'served');
const FILE = 'resnet18-f37072fd.pth';

const FIXTURE = String.raw`
import sys, os, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
m.eval()
torch.save(m.state_dict(), os.path.join(out, 'resnet18-f37072fd.pth'))
# torchvision loads the file it will be compared with, as weights= does
m2 = torchvision.models.resnet18()
m2.load_state_dict(torch.load(os.path.join(out, 'resnet18-f37072fd.pth')))
m2.eval()
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = m2(x)
open(os.path.join(out, 'x.bin'), 'wb').write(x.numpy().tobytes())
open(os.path.join(out, 'y.bin'), 'wb').write(y.numpy().tobytes())
`;

const env = { cache: process.env.CONVKIT_CACHE_DIR, url: process.env.CONVKIT_WEIGHTS_URL };
let server: ChildFileServer;
let original: PretrainedEntry;
let sha = '';

function readF32(name: string, shape: number[]): Tensor {
  return fromBytes(new Uint8Array(fs.readFileSync(join(served, name))), shape, 'float32');
}

function maxRelDiff(a: Tensor, b: Tensor): number {
  const x = a.toTypedArray() as Float32Array;
  const y = b.toTypedArray() as Float32Array;
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]));
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
  }
  return diff / scale;
}

before(async () => {
  fs.mkdirSync(served);
  execFileSync(PYTHON, ['-c', FIXTURE, served], { stdio: ['ignore', 'ignore', 'inherit'] });
  sha = sha256File(join(served, FILE));
  original = pretrainedEntry('resnet18');
  // the fixture stands in for torchvision's file: same name and URL, its own hash
  registerPretrained({ ...original, sha256Prefix: sha.slice(0, 16) });
  server = await startChildFileServer(served);
  process.env.CONVKIT_CACHE_DIR = join(dir, 'cache');
  process.env.CONVKIT_WEIGHTS_URL = server.url;
});

after(() => {
  server?.close();
  if (original) registerPretrained(original);
  for (const [k, v] of [['CONVKIT_CACHE_DIR', env.cache], ['CONVKIT_WEIGHTS_URL', env.url]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('createModel(name, { pretrained: true })', () => {
  test('downloads into the cache and gives torchvision output on the same file', () => {
    const cached = pretrainedPath(pretrainedEntry('resnet18'));
    assert.equal(cached, join(dir, 'cache', 'weights', FILE));
    assert.ok(!fs.existsSync(cached));
    const model = createModel('resnet18', { pretrained: true });
    try {
      assert.ok(fs.existsSync(cached));
      assert.equal(sha256File(cached), sha);
      model.eval();
      const diff = tidy(() => noGrad(() => maxRelDiff(model.forward(readF32('x.bin', [2, 3, 64, 64])) as Tensor, readF32('y.bin', [2, 1000]))));
      assert.ok(diff < 1e-4, `max relative difference to torchvision ${diff}`);
    } finally {
      model.dispose();
    }
  });

  test('a second model comes from the cache: it works with the server gone', async () => {
    const cached = pretrainedPath(pretrainedEntry('resnet18'));
    const mtime = fs.statSync(cached).mtimeMs;
    const saved = process.env.CONVKIT_WEIGHTS_URL;
    process.env.CONVKIT_WEIGHTS_URL = `http://127.0.0.1:${await closedPort()}`;
    try {
      const model = createModel('resnet18', { pretrained: true, numClasses: 10 });
      model.dispose();
    } finally {
      process.env.CONVKIT_WEIGHTS_URL = saved;
    }
    assert.equal(fs.statSync(cached).mtimeMs, mtime);
  });

  test('a corrupt cached file is moved aside and downloaded again', () => {
    const cached = pretrainedPath(pretrainedEntry('resnet18'));
    const bytes = fs.readFileSync(cached);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(cached, bytes);
    const model = createModel('resnet18', { pretrained: true });
    model.dispose();
    assert.equal(sha256File(cached), sha);
    assert.ok(fs.existsSync(`${cached}.corrupt`));
  });

  test('no network and nothing cached: the error names the URL and where to put the file', async () => {
    const saved = { cache: process.env.CONVKIT_CACHE_DIR, url: process.env.CONVKIT_WEIGHTS_URL };
    const port = await closedPort();
    process.env.CONVKIT_CACHE_DIR = join(dir, 'empty-cache');
    process.env.CONVKIT_WEIGHTS_URL = `http://127.0.0.1:${port}/models/`;
    try {
      assert.throws(() => createModel('resnet18', { pretrained: true }), (e: Error) => {
        assert.match(e.message, new RegExp(`could not download http://127\\.0\\.0\\.1:${port}/models/${FILE}`));
        assert.ok(e.message.includes(`put it at ${join(dir, 'empty-cache', 'weights', FILE)}`), e.message);
        assert.ok(e.message.includes(`SHA-256 starts with ${sha.slice(0, 16)}`), e.message);
        return true;
      });
    } finally {
      process.env.CONVKIT_CACHE_DIR = saved.cache;
      process.env.CONVKIT_WEIGHTS_URL = saved.url;
    }
    assert.deepEqual(fs.readdirSync(join(dir, 'empty-cache', 'weights')), []);
  });

  test('a model without published weights, and a bad option, are refused by name', () => {
    assert.throws(() => createModel('resnet20', { pretrained: true }), /model 'resnet20' has no pretrained weights: models with weights are .*resnet18/);
    assert.throws(() => createModel('resnet18', { pretrained: 'yes' as unknown as boolean }), /resnet18: pretrained must be true or false/);
  });
});

describe('transfer learning onto other data', () => {
  test('a gray stem adapted from RGB weights gives the RGB model output on the image repeated', () => {
    const rgb = createModel('resnet18', { pretrained: true }) as Classifier & { forwardFeatures(x: Tensor): Tensor };
    const gray = createModel('resnet18', { inChannels: 1, numClasses: 10 }) as Classifier & { forwardFeatures(x: Tensor): Tensor };
    try {
      const report = loadPretrained(gray as Module<never[], unknown>, 'resnet18');
      assert.equal(report.adaptedStem, 'conv1.weight');
      assert.deepEqual(report.skippedHead.sort(), ['fc.bias', 'fc.weight']);
      assert.deepEqual([report.missing, report.unexpected], [[], []]);
      rgb.eval();
      gray.eval();
      const diff = tidy(() => noGrad(() => {
        const g = readF32('x.bin', [2, 3, 64, 64]).narrow(1, 0, 1).contiguous();
        return maxRelDiff(gray.forwardFeatures(g), rgb.forwardFeatures(g.repeat([1, 3, 1, 1])));
      }));
      assert.ok(diff < 1e-5, `max relative difference ${diff}`);
    } finally {
      rgb.dispose();
      gray.dispose();
    }
  });

  test('loadModelWeights: an RGB file into a gray model fails with a hint, and loads with adaptInputConv', () => {
    const file = join(served, FILE);
    const gray = createModel('resnet18', { inChannels: 1 });
    try {
      assert.throws(() => loadModelWeights(gray as Module<never[], unknown>, file), /conv1\.weight.*the RGB stem conv1\.weight can be adapted to the model's input channels: load with adaptInputConv/s);
      const r = loadModelWeights(gray as Module<never[], unknown>, file, { adaptInputConv: true });
      assert.equal(r.adaptedStem, 'conv1.weight');
      assert.deepEqual([r.missing, r.unexpected, r.mismatched], [[], [], []]);
    } finally {
      gray.dispose();
    }
  });

  test('adaptInputConvWeight follows timm: 1 channel sums, C channels tile and scale by 3/C', () => {
    tidy(() => {
      // w[o][c] = 10 o + c + 1 for 2 outputs, 1x1 kernels
      const w = tensor([1, 2, 3, 11, 12, 13]).reshape([2, 3, 1, 1]);
      assert.deepEqual(adaptInputConvWeight(w, 1).toArray(), [[[[6]]], [[[36]]]]);
      const five = adaptInputConvWeight(w, 5);
      assert.deepEqual(five.shape, [2, 5, 1, 1]);
      const f = Array.from(five.toTypedArray() as Float32Array);
      const want = [1, 2, 3, 1, 2, 11, 12, 13, 11, 12].map((v) => (v * 3) / 5);
      f.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `element ${i}: ${v} vs ${want[i]}`));
      assert.throws(() => adaptInputConvWeight(tensor([1, 2]).reshape([1, 2, 1, 1]), 1), /expected RGB kernels \[O, 3, kh, kw\], got \[1, 2, 1, 1\]/);
    });
  });
});

describe('the weight registry', () => {
  test('every torchvision model in the zoo has torchvision 0.14 DEFAULT weights, with the ImageNet classes', () => {
    const zoo = listModels().filter((e) => e.config.torchvision).map((e) => e.name).sort();
    const withWeights = listPretrained().map((e) => e.name).sort();
    assert.deepEqual(withWeights, zoo);
    assert.match(TORCHVISION_VERSION, /^0\.14/);
    for (const e of listPretrained()) {
      if (e.name === 'resnet18') continue;
      assert.match(e.url, /^https:\/\/download\.pytorch\.org\/models\/[\w.]+-[0-9a-f]{8,}\.pth$/, e.name);
      // torch.hub's check_hash reads the prefix from the file name
      assert.equal(e.sha256Prefix, /-([0-9a-f]+)\.pth$/.exec(e.url)![1], e.name);
    }
    // spot checks against torchvision's sources
    assert.equal(pretrainedEntry('resnet50').url, 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth');
    assert.equal(pretrainedEntry('resnet50').weights, 'ResNet50_Weights.IMAGENET1K_V2');
    assert.equal(pretrainedEntry('efficientnet_b0').url, 'https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth');
    assert.equal(IMAGENET_CLASSES.length, 1000);
    assert.deepEqual([IMAGENET_CLASSES[0], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]], ['tench', 'tabby', 'toilet tissue']);
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
