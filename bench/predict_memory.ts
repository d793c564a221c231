// Issue 14's memory goal: `convkit predict` over a folder of 10,000 images keeps a flat resident
// set. The images are Fashion-MNIST's test set written as PNG files (again, under new names,
// for more than 10,000); the model is airbench_m
// (seeded weights: memory does not depend on them) as an exported .onnx on ONNX Runtime and as a
// model.safetensors on libtorch. The whole command runs as a user runs it; its RSS is sampled
// from /proc every 100 ms and averaged over each quarter of the images (the last against the second).
//   node dist-dev/bench/predict_memory.js [--images 10000] [--engines onnxruntime,libtorch] [--json out.json]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { manualSeed, zeros } from '../src/engine/index.js';
import { fashionMnist } from '../src/data/index.js';
import { createModel } from '../src/models/index.js';
import { exportOnnx } from '../src/export/index.js';
import { encodePng } from '../src/io/index.js';
import { saveModelWeights } from '../src/train/index.js';
import { arg, emit, listArg } from './common.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/convkit.js');
const count = arg('images', 10_000);
const engines = listArg('engines') ?? ['onnxruntime', 'libtorch'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-predict-mem-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

async function writeImages(dir: string): Promise<void> {
  fs.mkdirSync(dir);
  const test = fashionMnist({ split: 'test' });
  const n = Math.min(count, test.length);
  const batch = await test.getBatch(Array.from({ length: n }, (_, i) => i));
  const pixels = batch.x.toTypedArray() as Uint8Array;
  batch.x.dispose();
  batch.y.dispose();
  test.dispose();
  // past the test set's 10,000 images, they come round again under new names
  for (let i = 0; i < count; i++) {
    const data = pixels.subarray((i % n) * 784, ((i % n) + 1) * 784);
    fs.writeFileSync(path.join(dir, `${String(i).padStart(5, '0')}.png`), await encodePng({ data, channels: 1, height: 28, width: 28 }));
  }
}

function writeModels(): { onnx: string; weights: string } {
  manualSeed(0);
  const model = createModel('airbench_m', { numClasses: 10, inChannels: 1 });
  const mean = [0.286], std = [0.353];
  const onnx = path.join(tmp, 'airbench_m.onnx');
  exportOnnx(model, zeros([1, 1, 28, 28]), { file: onnx, metadata: { modelName: 'airbench_m', inputSize: [1, 28, 28], mean, std, resize: 28, crop: [28, 28] } });
  const weights = path.join(tmp, 'model.safetensors');
  saveModelWeights(weights, model, {
    convkit_model: 'airbench_m', convkit_model_options: JSON.stringify({ numClasses: 10, inChannels: 1 }),
    convkit_normalization: JSON.stringify({ mean, std }), convkit_dataset: 'fashion-mnist',
  });
  model.dispose();
  return { onnx, weights };
}

/** RSS samples, each with the images predicted by then */
interface Sampled { seconds: number; predicted: number; samples: { done: number; mb: number }[] }

function rssMB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The command's output lines counted and its RSS sampled until it exits. */
function predict(args: string[]): Promise<Sampled> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'predict', ...args, '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const samples: { done: number; mb: number }[] = [];
    let predicted = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { for (const c of b) if (c === 10) predicted++; });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setInterval(() => { const mb = rssMB(child.pid!); if (mb !== null) samples.push({ done: predicted, mb }); }, 100);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      if (code !== 0) reject(new Error(`convkit predict ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, predicted, samples });
    });
  });
}

/** Mean RSS while the q-th quarter of the images was being predicted (startup excluded: it predicts none). */
const quarterMean = (r: Sampled, q: number): number => {
  const part = r.samples.filter((s) => s.done > 0 && Math.min(3, Math.floor((4 * s.done) / r.predicted)) === q).map((s) => s.mb);
  return part.reduce((a, b) => a + b, 0) / Math.max(part.length, 1);
};

const images = path.join(tmp, 'images');
await writeImages(images);
const files = writeModels();
const rows: (string | number)[][] = [];
for (const engine of engines) {
  const model = engine === 'onnxruntime' ? [files.onnx] : [files.weights, '--engine', 'libtorch', '--precision', 'fp32'];
  const r = await predict([...model, images]);
  const q = [0, 1, 2, 3].map((i) => quarterMean(r, i));
  rows.push([engine, r.predicted, r.predicted / r.seconds, ...q, Math.max(...r.samples.map((s) => s.mb)), (100 * (q[3] - q[1])) / q[1]]);
  console.error(`${engine}: ${r.predicted} images in ${r.seconds.toFixed(1)} s, RSS by quarter ${q.map((v) => v.toFixed(0)).join(' / ')} MB`);
}
emit('predict_memory', [{
  title: `convkit predict over a folder of ${count} PNG images (Fashion-MNIST test set), airbench_m, whole command, RSS sampled every 100 ms, averaged over each quarter of the images (goal: the last quarter within 5 % of the second)`,
  headers: ['engine', 'images', 'images/s', 'RSS Q1 (MB)', 'RSS Q2 (MB)', 'RSS Q3 (MB)', 'RSS Q4 (MB)', 'peak RSS (MB)', 'Q4 vs Q2 (%)'],
  rows,
}]);
