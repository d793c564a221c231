// convkit predict end to end: folders, globs and files; JSON lines and the table; a corrupt file,
// a dangling link, a folder with no images reported by path and skipped; the exit status; the
// same answers from an .onnx file and its checkpoint; memory flat over a few hundred images.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import '../train/tiny_model.js';
import { encodePng } from '../../src/io/index.js';
import { liveTensors } from '../data/live.js';
import { globToRegExp, imagePaths, loadPredictor, predictFiles } from '../../src/deploy/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-predict-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const env = { ...process.env, CONVKIT_NUM_THREADS: '1' };
const run = path.join(dir, 'run');
const onnxFile = path.join(dir, 'tiny.onnx');
const imgs = path.join(dir, 'imgs');

const gray = (seed: number, h = 28, w = 28): Uint8Array => Uint8Array.from({ length: h * w }, (_, j) => (seed * 31 + j * 7 + ((j * j) >> 5)) % 256);

before(async () => {
  const train = spawnSync(process.execPath, [MAIN, 'train', '--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '64',
    '--warmup-epochs', '0', '--bf16', 'off', '--channels-last', 'off', '--epochs', '1', '--limit-train', '256', '--limit-test', '64',
    '--out-dir', run, '--quiet'], { encoding: 'utf8', env });
  assert.equal(train.status, 0, train.stderr);
  const ex = spawnSync(process.execPath, [MAIN, 'export', run, '-o', onnxFile, '--import', TINY], { encoding: 'utf8', env });
  assert.equal(ex.status, 0, ex.stderr);
  fs.mkdirSync(path.join(imgs, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'empty', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'empty', 'deeper', 'readme.txt'), 'no images here');
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(imgs, `g${i}.png`), await encodePng({ data: gray(i), channels: 1, height: 28, width: 28 }));
  // RGB at another size and aspect: converted to gray, resized and centre-cropped to 28 x 28
  const sharp = (await import('sharp')).default;
  for (let i = 0; i < 2; i++) {
    const rgb = Buffer.from(Uint8Array.from({ length: 40 * 30 * 3 }, (_, j) => (i * 50 + j * 3) % 256));
    await sharp(rgb, { raw: { width: 30, height: 40, channels: 3 } }).jpeg().toFile(path.join(imgs, 'sub', `c${i}.jpg`));
  }
  fs.writeFileSync(path.join(imgs, 'corrupt.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]));
  fs.writeFileSync(path.join(imgs, 'notes.txt'), 'not an image, not listed');
  fs.symlinkSync(path.join(dir, 'gone.png'), path.join(dir, 'dangling.png'));
});

const predict = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [MAIN, 'predict', ...args, '--import', TINY], { encoding: 'utf8', env });

interface Line { file: string; top: { label: string; index: number; probability: number }[] }
const lines = (stdout: string): Line[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

test('a folder as JSON lines: every image, sorted, top-k in order; the corrupt file reported by path and skipped', () => {
  const r = predict(onnxFile, imgs, '--json', '--top', '3', '--batch', '3');
  assert.equal(r.status, 0, r.stderr);
  const out = lines(r.stdout);
  assert.deepEqual(out.map((l) => path.relative(imgs, l.file)), ['g0.png', 'g1.png', 'g2.png', 'g3.png', 'g4.png', 'sub/c0.jpg', 'sub/c1.jpg']);
  for (const l of out) {
    assert.equal(l.top.length, 3);
    assert.ok(l.top[0].probability >= l.top[1].probability && l.top[1].probability >= l.top[2].probability);
    assert.ok(l.top.reduce((s, t) => s + t.probability, 0) <= 1 + 1e-6);
  }
  assert.match(r.stderr, /corrupt\.png/);
  assert.match(r.stderr, /engine: ONNX Runtime \(an ONNX file\)/);
  assert.match(r.stderr, /7 images predicted, 1 skipped/);
  assert.doesNotMatch(r.stderr, /notes\.txt/);
});

test('the checkpoint on libtorch and on ONNX Runtime answers as its .onnx file does; a table by default', () => {
  const ref = lines(predict(onnxFile, imgs, '--json').stdout);
  for (const engine of ['libtorch', 'onnxruntime']) {
    const r = predict(run, imgs, '--json', '--engine', engine, '--precision', engine === 'libtorch' ? 'fp32' : 'auto');
    assert.equal(r.status, 0, r.stderr);
    const got = lines(r.stdout);
    assert.deepEqual(got.map((l) => l.top.map((t) => t.label)), ref.map((l) => l.top.map((t) => t.label)));
    got.forEach((l, i) => l.top.forEach((t, k) => assert.ok(Math.abs(t.probability - ref[i].top[k].probability) < 1e-4)));
    assert.match(r.stderr, engine === 'libtorch' ? /engine: libtorch fp32 \(as asked\)/ : /engine: ONNX Runtime \(as asked\)/);
  }
  const t = predict(onnxFile, path.join(imgs, 'g0.png'), '--top', '2');
  assert.equal(t.status, 0, t.stderr);
  const [header, row] = t.stdout.trimEnd().split('\n');
  assert.match(header, /^file\s+top-1\s+top-2$/);
  assert.ok(row.startsWith(path.join(imgs, 'g0.png')));
  assert.match(row, new RegExp(`${ref[0].top[0].label.replace(/[/-]/g, '.')} ${(100 * ref[0].top[0].probability).toFixed(2)}%`));
});

test('globs, and the exit status: non-zero only when no image could be predicted', () => {
  const g = predict(onnxFile, path.join(imgs, '**', '*.jpg'), '--json');
  assert.equal(g.status, 0, g.stderr);
  assert.deepEqual(lines(g.stdout).map((l) => path.basename(l.file)), ['c0.jpg', 'c1.jpg']);
  // some bad arguments among good ones: reported, the rest predicted
  const mixed = predict(onnxFile, path.join(dir, 'dangling.png'), path.join(dir, 'empty'), path.join(imgs, 'g1.png'), '--json', '--quiet');
  assert.equal(mixed.status, 0, mixed.stderr);
  assert.equal(lines(mixed.stdout).length, 1);
  assert.match(mixed.stderr, /dangling\.png: no such file or folder/);
  assert.match(mixed.stderr, /empty: no images \(.jpg .jpeg .png .webp\) in this folder/);
  // nothing predicted: 1
  for (const args of [[path.join(dir, 'empty')], [path.join(imgs, 'corrupt.png')], [path.join(imgs, 'notes.txt')], [path.join(dir, '*.gif')]]) {
    const r = predict(onnxFile, ...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no image could be predicted/);
    assert.ok(r.stderr.includes(args[0]), r.stderr);
  }
  // a model that cannot be opened: 1, naming it; bad usage: 2
  const notOnnx = path.join(dir, 'fake.onnx');
  fs.writeFileSync(notOnnx, 'hello');
  const bad = predict(notOnnx, imgs);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /fake\.onnx is not an ONNX model/);
  assert.equal(predict(onnxFile).status, 2);
  assert.equal(predict(onnxFile, imgs, '--engine', 'gpu').status, 2);
  assert.equal(predict(onnxFile, imgs, '--top', '0').status, 2);
  const help = spawnSync(process.execPath, [MAIN, 'predict', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: convkit predict/);
});

test('glob patterns as regular expressions', () => {
  const re = globToRegExp('**/a?[0-9].png');
  assert.ok(re.test('ab1.png') && re.test('x/y/ab1.png'));
  assert.ok(!re.test('ab1.jpg') && !re.test('abc.png') && !re.test('a/b1.png'));
  assert.ok(globToRegExp('*.png').test('x.png') && !globToRegExp('*.png').test('d/x.png'));
  assert.ok(globToRegExp('[!a]*.jpg').test('b.jpg') && !globToRegExp('[!a]*.jpg').test('a.jpg'));
  assert.ok(globToRegExp('a.b+c(1).png').test('a.b+c(1).png') && !globToRegExp('a.b.png').test('axb.png'));
});

test('memory stays flat over a few hundred images: paths streamed, one batch decoding ahead', async () => {
  const many = path.join(dir, 'many');
  fs.mkdirSync(many);
  // larger than the model's input: each is decoded and resized, buffers that a leak would keep
  const png = await encodePng({ data: gray(1, 160, 120), channels: 1, height: 160, width: 120 });
  const n = 400;
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(many, `${String(i).padStart(4, '0')}.png`), png);
  const p = await loadPredictor(onnxFile, { threads: 1 });
  const live = liveTensors();
  const before = live();
  try {
    let count = 0;
    let liveAt5 = 0;
    let liveMax = 0;
    let batches = 0;
    let base = 0;
    let peak = 0;
    const problems: string[] = [];
    for await (const rows of predictFiles(p, imagePaths([many], (a, m) => problems.push(`${a}: ${m}`)), { batch: 16, top: 1 })) {
      count += rows.length;
      batches++;
      const rss = process.memoryUsage().rss;
      if (batches === 5) { base = rss; liveAt5 = live(); }
      if (batches > 5) { peak = Math.max(peak, rss); liveMax = Math.max(liveMax, live()); }
    }
    // no tensor outlives its batch
    assert.ok(liveMax <= liveAt5, `live tensors grew from ${liveAt5} to ${liveMax}`);
    assert.equal(live(), before);
    assert.equal(count, n);
    assert.deepEqual(problems, []);
    assert.equal(batches, n / 16);
    // 320 images after the base line: a leak of each image's decoded buffers (~60 KB) would
    // show as ~19 MB; allow GC's slack
    const growth = (peak - base) / 2 ** 20;
    assert.ok(growth < 16, `RSS grew by ${growth.toFixed(1)} MB over ${n - 80} images`);
  } finally {
    await p.dispose();
  }
});
