// convkit explain end to end: a tiny model trained for one epoch on Fashion-MNIST (whose
// report.html now carries Grad-CAM maps of misclassified images), explained on PNG files with
// each method; the files and index.json; bad input exits 2 with a clear message.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fashionMnist } from '../../src/data/index.js';
import { encodePng } from '../../src/io/images.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-explain-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const ENV = { ...process.env, CONVKIT_NUM_THREADS: '1', CONVKIT_DEBUG: '' };

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: ENV, cwd: tmp, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const run = path.join(tmp, 'run');
const images = path.join(tmp, 'images');

before(async () => {
  const r = cli(['train', '--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '64', '--warmup-epochs', '0', '--bf16', 'off',
    '--channels-last', 'on', '--epochs', '1', '--limit-train', '1000', '--limit-test', '200', '--out-dir', run]);
  assert.equal(r.code, 0, r.stderr);
  // three test images as PNG files, one in a sub-folder
  fs.mkdirSync(path.join(images, 'more'), { recursive: true });
  const test = fashionMnist({ split: 'test' });
  const b = await test.getBatch([0, 1, 2]);
  const bytes = b.x.contiguous().toBytes();
  for (let i = 0; i < 3; i++) {
    const png = await encodePng({ data: bytes.subarray(i * 784, (i + 1) * 784), channels: 1, height: 28, width: 28 });
    fs.writeFileSync(path.join(images, i === 2 ? 'more' : '', `item${i}.png`), png);
  }
  b.x.dispose();
  b.y.dispose();
  test.dispose?.();
});

test('the training report shows Grad-CAM maps of misclassified images next to the error grid', () => {
  const html = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
  const grid = html.indexOf('id="misclassified"');
  const cams = html.indexOf('id="misclassified-gradcam"');
  assert.ok(grid > 0 && cams > grid, 'the Grad-CAM grid follows the error grid');
  const n = (html.slice(cams).match(/src="data:image\/png;base64,/g) ?? []).length;
  assert.ok(n >= 1 && n <= 16, `${n} Grad-CAM thumbnails`);
  assert.match(html, /Grad-CAM of misclassified test images/);
  assert.match(html, /\(layer relu\)/);
});

test('explain a checkpoint with each method: overlay, map, raw float file and index.json', () => {
  const model = path.join(run, 'model.safetensors');
  for (const method of ['gradcam', 'gradcampp', 'ig', 'occlusion']) {
    const out = path.join(tmp, `out-${method}`);
    const r = cli(['explain', model, images, '--import', TINY, '--method', method, '-o', out, '--steps', '32']);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as {
      format: string; method: string; meta: { model: string; size: number[] };
      images: { input: string; classIndex: number; predicted: number; className: string; overlay: string; mapPng: string; raw: string; rawMax: number; completenessError?: number }[];
    };
    assert.equal(index.format, 'convkit-explain');
    assert.equal(index.method, method);
    assert.equal(index.meta.model, 'tiny_cnn');
    assert.deepEqual(index.meta.size, [28, 28], 'the training run\'s image size');
    assert.equal(index.images.length, 3);
    for (const im of index.images) {
      assert.equal(im.classIndex, im.predicted);
      assert.equal(typeof im.className, 'string', 'class names come from the checkpoint');
      assert.ok(fs.readFileSync(path.join(out, im.overlay)).subarray(1, 4).toString() === 'PNG');
      assert.ok(fs.readFileSync(path.join(out, im.mapPng)).subarray(1, 4).toString() === 'PNG');
      const raw = fs.readFileSync(path.join(out, im.raw));
      assert.equal(raw.length, 28 * 28 * 4, 'float32 [28, 28]');
      const f = new Float32Array(raw.buffer, raw.byteOffset, 28 * 28);
      assert.ok(Math.abs(Math.max(...f) - im.rawMax) < 1e-6);
      if (method === 'ig') assert.ok(im.completenessError! < 0.05);
    }
    assert.match(r.stdout, /3 images explained/);
  }
  // a second method into the same folder keeps the first one's entries
  const both = path.join(tmp, 'out-gradcam');
  const again = cli(['explain', model, images, '--import', TINY, '--method', 'occlusion', '-o', both]);
  assert.equal(again.code, 0, again.stderr);
  const merged = JSON.parse(fs.readFileSync(path.join(both, 'index.json'), 'utf8')) as { images: { method: string }[] };
  assert.deepEqual(merged.images.map((e) => e.method), ['gradcam', 'gradcam', 'gradcam', 'occlusion', 'occlusion', 'occlusion']);
  const cls = cli(['explain', model, path.join(images, 'item0.png'), '--import', TINY, '--class', '3', '--layer', 'conv2', '-o', path.join(tmp, 'out-c'), '--json']);
  assert.equal(cls.code, 0, cls.stderr);
  const j = JSON.parse(cls.stdout) as { images: { classIndex: number; layer: string; featureSize: number[] }[] };
  assert.equal(j.images[0].classIndex, 3);
  assert.equal(j.images[0].layer, 'conv2');
  assert.deepEqual(j.images[0].featureSize, [14, 14]);
});

test('bad input: missing layer, class out of range, unknown method, no output folder; --help', () => {
  const model = path.join(run, 'model.safetensors');
  const img = path.join(images, 'item0.png');
  const cases: [string[], RegExp][] = [
    [['explain', model, img, '--import', TINY, '-o', tmp, '--layer', 'conv9'], /layer 'conv9': the model has no module of that name; its top-level modules are conv1, bn1, relu, pool, conv2, bn2, avgpool, dropout, fc/],
    [['explain', model, img, '--import', TINY, '-o', tmp, '--class', '10'], /class 10 is out of range: the model has 10 classes \(0\.\.9\)/],
    [['explain', model, img, '--import', TINY, '-o', tmp, '--layer', 'fc'], /its output has shape \[1, 10\], not a \[N, C, H, W\] feature map/],
    [['explain', model, img, '-o', tmp, '--method', 'lime'], /--method must be one of gradcam, gradcampp, ig, occlusion, got 'lime'/],
    [['explain', model, img], /the output folder is required/],
    [['explain', 'no_such_model', img, '-o', tmp], /no_such_model is neither a file nor a registered model/],
    [['explain', model, path.join(tmp, 'missing.png'), '-o', tmp], /input .*missing\.png: no such file or folder/],
    [['explain', model, img, '-o', tmp, '--method', 'ig', '--layer', 'conv2'], /--layer applies to gradcam and gradcampp, not ig/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const h = cli(['explain', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^usage: convkit explain/);
  assert.match(cli(['--help']).stdout, /^ {2}explain /m);
});
