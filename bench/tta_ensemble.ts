// Issue 13's screens of test-time views and ensembles: trained Fashion-MNIST models' test top-1
// under several test-time augmentations, each model alone and their logits or probabilities
// averaged. Views are run once per model and combined afterwards, so every row sees the same logits.
//   node dist-dev/bench/tta_ensemble.js run-a/model.safetensors [run-b/model.safetensors ...]
import { noGrad, tensor, tidy, type Tensor } from '../src/engine/index.js';
import { evalLoader, forward, logitsOf, openDataset, openModelFile, topkCorrect } from '../src/train/index.js';
import { translate } from '../src/train/evaluate.js';
import { describeWeightsFile } from '../src/train/eval_checkpoint.js';
import { badArg } from './args.js';
import { table } from './common.js';

const CLASSES = 10;
/** the mirrored pairs each model is run on: the image and its shifts by one pixel */
const SHIFTS = { centre: [[0, 0]], diagonal: [[1, 1], [-1, -1]], antidiagonal: [[1, -1], [-1, 1]], axes: [[1, 0], [-1, 0], [0, 1], [0, -1]] } as const;
type Part = keyof typeof SHIFTS;
/** each test-time augmentation: the weight of each part's mean logits */
const TTAS: [string, Partial<Record<Part, number>>][] = [
  ['flip', { centre: 1 }],
  ['flip + diagonal shifts (airbench, --eval-translate 1)', { centre: 0.5, diagonal: 0.5 }],
  ['flip + both diagonals', { centre: 0.5, diagonal: 0.25, antidiagonal: 0.25 }],
  ['flip + all 8 shifts', { centre: 0.4, diagonal: 0.2, antidiagonal: 0.2, axes: 0.2 }],
  ['flip + all 8 shifts, equal weights', { centre: 1 / 9, diagonal: 2 / 9, antidiagonal: 2 / 9, axes: 4 / 9 }],
];

/** each part's mean logits over the test set ([N * classes]) and the labels */
interface PartLogits { parts: Record<Part, Float32Array>; labels: number[] }

async function partLogits(file: string): Promise<PartLogits> {
  const opened = openModelFile(file);
  if (opened.channels !== 1 || opened.size.join('x') !== '28x28') {
    opened.model.dispose();
    throw new Error(`${file}: expected a model of 1x28x28 Fashion-MNIST images, found one of ${opened.channels}x${opened.size.join('x')} images`);
  }
  const { precision } = describeWeightsFile(file, {});
  const data = openDataset({ dataset: 'fashion-mnist', dataRoot: null, imageSize: null, inChannels: 1, numClasses: CLASSES, seed: 0, limitTrain: null, limitTest: null }, 'test');
  const scores = (): Float32Array => new Float32Array(data.length * CLASSES);
  const parts: Record<Part, Float32Array> = { centre: scores(), diagonal: scores(), antidiagonal: scores(), axes: scores() };
  const labels: number[] = [];
  try {
    opened.model.eval();
    const loader = evalLoader(data, { evalBatchSize: 500, augment: [], prefetch: 2, seed: 0, dataset: 'fashion-mnist', inChannels: 1 }, opened.mean, opened.std);
    for await (const b of loader.batches(0)) {
      tidy(() => noGrad(() => {
        const once = (v: Tensor): Tensor => tidy(() => {
          const logits = logitsOf(forward(opened.model, v, precision)).float();
          if (logits.size(1) !== CLASSES) throw new Error(`${file}: expected ${CLASSES} logits (Fashion-MNIST's classes), found ${logits.size(1)}`);
          return logits;
        });
        const mirrored = (v: Tensor): Tensor => once(v).add(once(v.flip([3])));
        for (const part of Object.keys(SHIFTS) as Part[]) {
          const shifts = SHIFTS[part];
          const sum = shifts.map(([dy, dx]) => mirrored(dy || dx ? translate(b.x, dy, dx) : b.x)).reduce((a, c) => a.add(c));
          parts[part].set(sum.div(2 * shifts.length).toTypedArray() as Float32Array, labels.length * CLASSES);
        }
        labels.push(...Array.from(b.y.toTypedArray() as BigInt64Array, Number));
      }));
      b.x.dispose();
      b.y.dispose();
    }
  } finally {
    opened.model.dispose();
    data.dispose?.();
  }
  return { parts, labels };
}

const weighted = (terms: [Float32Array, number][]): Float32Array => {
  const out = new Float32Array(terms[0][0].length);
  for (const [a, w] of terms) for (let i = 0; i < out.length; i++) out[i] += w * a[i];
  return out;
};

const probabilities = (logits: Float32Array): Float32Array =>
  tidy(() => tensor(logits, { shape: [logits.length / CLASSES, CLASSES] }).softmax(1).toTypedArray() as Float32Array);

const top1 = (scores: Float32Array, labels: Tensor): string => tidy(() => {
  const [right] = topkCorrect(tensor(scores, { shape: [labels.size(0), CLASSES] }), labels, [1]);
  return (100 * right / labels.size(0)).toFixed(2);
});

const files = process.argv.slice(2);
if (!files.length || files.some((f) => f.startsWith('--'))) badArg('expected only trained Fashion-MNIST models (model.safetensors or checkpoints), one or more');
const runs: PartLogits[] = [];
for (const f of files) {
  try {
    runs.push(await partLogits(f));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`); // the message names the file
    process.exit(1);
  }
}
const labels = tensor(runs[0].labels);
const rows = TTAS.map(([name, weights]) => {
  const scores = runs.map((r) => weighted(Object.entries(weights).map(([part, w]) => [r.parts[part as Part], w])));
  const ensemble = scores.length > 1 ? [top1(weighted(scores.map((s) => [s, 1])), labels), top1(weighted(scores.map((s) => [probabilities(s), 1])), labels)] : ['-', '-'];
  return [name, scores.map((s) => top1(s, labels)).join(' / '), ...ensemble];
});
console.log(table(['test-time views', 'top-1 of each model (%)', 'ensemble, mean logits (%)', 'ensemble, mean probabilities (%)'], rows));
