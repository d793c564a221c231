// The page in a real browser: Debian's chromium, headless, driven by playwright-core, against
// `convkit web`'s server. Images given through the file input, a paste and a drop (and strokes on
// the drawing pad of a gray 28x28 model) must give onnxruntime-web the same top-1 class and
// probabilities as onnxruntime-node (loadPredictor) on the same file, within 1e-4. Screenshots go
// to test-artifacts/web/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { createModel } from '../../src/models/index.js';
import type { Module } from '../../src/nn/index.js';
import { exportOnnx, type ExportMetadata } from '../../src/export/index.js';
import { loadPredictor } from '../../src/deploy/index.js';
import { CIFAR10_CLASSES, FASHION_MNIST_CLASSES, decodeImage, encodePng, type ChwImage } from '../../src/io/index.js';
import { startWebServer, type WebServer } from '../../src/web/index.js';
import { prng } from '../helpers/prng.js';

const CHROMIUM = process.env.CONVKIT_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM} (apt-get install chromium, or set CONVKIT_CHROMIUM)`;
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/web/', import.meta.url));
const TOL = 1e-4;

interface Hook {
  threads: number;
  runs: number;
  error: string | null;
  last: { source: string; probabilities: number[]; top: { index: number; label: string; probability: number }[]; inferenceMs: number } | null;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-browser-'));
let browser: Browser | undefined;
const problems: string[] = [];

before(async () => {
  if (SKIP) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Freshly initialised heads give nearly equal logits (airbench's are ~1e-5), which would make a
 * top-1 comparison a coin toss: the classifier's weight is scaled so that logits spread (std 2).
 */
function spreadLogits(model: Module<never[], unknown>, inputSize: number[]): void {
  noGrad(() => tidy(() => {
    const logits = (model as unknown as Module<[Tensor], Tensor>).call(randn([8, ...inputSize])).toTypedArray() as Float32Array;
    const mean = logits.reduce((a, b) => a + b, 0) / logits.length;
    const std = Math.sqrt(logits.reduce((a, b) => a + (b - mean) ** 2, 0) / logits.length);
    const head = [...model.namedParameters()].filter(([k, p]) => k.endsWith('weight') && p.ndim === 2).at(-1)![1];
    head.mul_(2 / std);
  }));
}

/** A zoo model with seeded random weights, exported with the metadata the page reads. */
function exportModel(name: string, options: Record<string, unknown>, metadata: ExportMetadata & { inputSize: number[] }): string {
  manualSeed(11);
  const model = createModel(name, options) as unknown as Module<never[], unknown>;
  const file = path.join(dir, `${name}.onnx`);
  try {
    model.eval();
    spreadLogits(model, metadata.inputSize);
    exportOnnx(model, randn([1, ...metadata.inputSize]), { file, metadata: { modelName: name, ...metadata } });
  } finally {
    model.dispose();
  }
  return file;
}

/** A seeded image with structure at several scales (so that resizing matters), written as PNG. */
async function writeImage(name: string, channels: 1 | 3, height: number, width: number, seed: number): Promise<{ file: string; image: ChwImage }> {
  const r = prng(seed);
  const data = new Uint8Array(channels * height * width);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const wave = 127 + 90 * Math.sin((x + 2 * c) / 3 + y / 5) * Math.cos(y / (4 + c));
        data[(c * height + y) * width + x] = Math.max(0, Math.min(255, Math.round(wave + 40 * (r() - 0.5))));
      }
    }
  }
  const image = { data, channels, height, width };
  const file = path.join(dir, name);
  fs.writeFileSync(file, await encodePng(image));
  return { file, image };
}

/** onnxruntime-node's probabilities (by class index) for one file, decoded as convkit decodes it. */
async function nodeProbabilities(model: string, file: string, channels: 1 | 3, height: number, width: number): Promise<number[]> {
  const data = await decodeImage(file, { size: [height, width], mode: 'center-crop', channels });
  return nodeOnPixels(model, { data, channels, height, width });
}

async function nodeOnPixels(model: string, image: ChwImage): Promise<number[]> {
  const p = await loadPredictor(model, { threads: 1 });
  try {
    const [row] = await p.predict([image], { top: 1000 });
    const out = new Array<number>(row.length);
    for (const r of row) out[r.index] = r.probability;
    return out;
  } finally {
    await p.dispose();
  }
}

async function openPage(server: WebServer): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1000, height: 720 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  await page.goto(server.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.documentElement.dataset.state ?? ''), null, { timeout: 20_000 });
  const error = await page.evaluate(() => (window as unknown as { convkit: Hook }).convkit.error);
  assert.equal(error, null);
  return page;
}

const hook = (page: Page): Promise<Hook> => page.evaluate(() => (window as unknown as { convkit: Hook }).convkit);

/** Waits for the page's classification number `runs`, and returns its result. */
async function result(page: Page, runs: number): Promise<NonNullable<Hook['last']>> {
  await page.waitForFunction((n) => Number(document.documentElement.dataset.runs ?? 0) >= n || document.documentElement.dataset.state === 'error', runs, { timeout: 20_000 });
  const h = await hook(page);
  assert.equal(h.error, null);
  assert.equal(h.runs, runs);
  return h.last!;
}

/** Checks, and returns the largest probability difference. */
function assertSame(browserP: number[], nodeP: number[], what: string): number {
  assert.equal(browserP.length, nodeP.length, what);
  const top = (p: number[]): number => p.indexOf(Math.max(...p));
  const sorted = [...nodeP].sort((a, b) => b - a);
  // a seed whose two best classes are this close would make the top-1 check meaningless
  assert.ok(sorted[0] - sorted[1] > 1e-3, `${what}: the reference's two best classes are ${sorted[0] - sorted[1]} apart: pick another seed`);
  assert.equal(top(browserP), top(nodeP), `${what}: top-1`);
  browserP.forEach((p, i) => assert.ok(Math.abs(p - nodeP[i]) <= TOL, `${what}: class ${i}: browser ${p}, onnxruntime-node ${nodeP[i]}`));
  return Math.max(...browserP.map((p, i) => Math.abs(p - nodeP[i])));
}

/** Hands the page a file as a paste or a drop would: a DataTransfer with the PNG in it. */
async function transfer(page: Page, file: string, kind: 'paste' | 'drop'): Promise<void> {
  const bytes = [...fs.readFileSync(file)];
  await page.evaluate(({ bytes, name, kind }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
    if (kind === 'paste') document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    else document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { bytes, name: path.basename(file), kind });
}

test('an RGB model: file input, paste and drop give onnxruntime-node\'s top-1 and probabilities', { skip: SKIP }, async (t) => {
  const model = exportModel('resnet20', { numClasses: 10 }, {
    classNames: [...CIFAR10_CLASSES], inputSize: [3, 32, 32], mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616], resize: 36, crop: [32, 32],
  });
  // 45x52: downscaled to 36x42 (antialiased), then a 32x32 centre crop
  const { file } = await writeImage('rgb.png', 3, 45, 52, 1);
  const want = await nodeProbabilities(model, file, 3, 45, 52);
  const server = await startWebServer({ model });
  try {
    const page = await openPage(server);
    const h = await hook(page);
    // cross-origin isolated (COOP/COEP), so onnxruntime-web may run threads
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.equal(h.threads, Math.max(1, Math.min(4, cores)));
    assert.equal(await page.isHidden('#draw'), true); // no drawing pad for a 3-channel model

    await page.setInputFiles('#file-input', file);
    const viaInput = await result(page, 1);
    t.diagnostic(`file input: max |browser - onnxruntime-node| = ${assertSame(viaInput.probabilities, want, 'file input').toExponential(2)}, ` +
      `inference ${viaInput.inferenceMs.toFixed(1)} ms on ${h.threads} threads`);
    assert.equal(viaInput.top.length, 5);
    assert.equal(viaInput.top[0].label, CIFAR10_CLASSES[want.indexOf(Math.max(...want))]);
    assert.ok(viaInput.inferenceMs > 0);
    // the page shows the same: five bars, the best first, and the time taken
    assert.equal(await page.locator('#results li').count(), 5);
    assert.equal(await page.locator('#results li .label').first().textContent(), viaInput.top[0].label);
    assert.match((await page.locator('#timing').textContent()) ?? '', /^Inference \d+(\.\d+)? ms, preprocessing \d+(\.\d+)? ms\.$/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'rgb-resnet20.png'), fullPage: true });

    await transfer(page, file, 'paste');
    assertSame((await result(page, 2)).probabilities, want, 'paste');
    await transfer(page, file, 'drop');
    assertSame((await result(page, 3)).probabilities, want, 'drop');
    await page.close();
  } finally {
    await server.close();
  }
  assert.deepEqual(problems, []);
});

test('a gray 28x28 model: an image of another size, and strokes on the drawing pad', { skip: SKIP }, async (t) => {
  const model = exportModel('airbench_s', { numClasses: 10, inChannels: 1 }, {
    classNames: [...FASHION_MNIST_CLASSES], inputSize: [1, 28, 28], mean: [0.286], std: [0.353], resize: 28, crop: [28, 28],
  });
  const { file } = await writeImage('gray.png', 1, 37, 30, 2);
  const want = await nodeProbabilities(model, file, 1, 37, 30);
  const server = await startWebServer({ model });
  try {
    const page = await openPage(server);
    await page.setInputFiles('#file-input', file);
    t.diagnostic(`gray file: max difference ${assertSame((await result(page, 1)).probabilities, want, 'gray file').toExponential(2)}`);

    assert.equal(await page.isVisible('#draw-canvas'), true);
    await page.click('#clear');
    const box = (await page.locator('#draw-canvas').boundingBox())!;
    const at = (x: number, y: number): [number, number] => [box.x + (x / 28) * box.width, box.y + (y / 28) * box.height];
    // a trouser-like shape: two legs and a waistband
    for (const stroke of [[[9, 4], [19, 4]], [[10, 5], [8, 24]], [[18, 5], [20, 24]], [[14, 5], [14, 12]]]) {
      await page.mouse.move(...at(stroke[0][0], stroke[0][1]));
      await page.mouse.down();
      await page.mouse.move(...at(stroke[1][0], stroke[1][1]), { steps: 6 });
      await page.mouse.up();
    }
    // the last frame's classification is queued after the strokes; wait until it has run
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.waitForFunction(() => document.documentElement.dataset.state === 'done', null, { timeout: 20_000 });
    const h = await hook(page);
    assert.equal(h.error, null);
    assert.ok(h.runs >= 2);
    assert.equal(h.last!.source, 'The drawing');
    const pixels = await page.evaluate(() => {
      const c = document.getElementById('draw-canvas') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, 28, 28).data;
      return Array.from({ length: 28 * 28 }, (_, i) => d[4 * i]);
    });
    assert.ok(pixels.filter((v) => v > 128).length > 40, 'the strokes drew on the pad');
    const drawn = await nodeOnPixels(model, { data: Uint8Array.from(pixels), channels: 1, height: 28, width: 28 });
    t.diagnostic(`drawing: max difference ${assertSame(h.last!.probabilities, drawn, 'drawing').toExponential(2)}`);
    assert.equal(await page.isHidden('#seen'), true); // the pad itself shows what the model sees
    await page.screenshot({ path: path.join(ARTIFACTS, 'gray-drawing.png'), fullPage: true });
    await page.close();
  } finally {
    await server.close();
  }
  assert.deepEqual(problems, []);
});
