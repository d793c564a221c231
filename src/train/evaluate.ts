// Evaluation of a classifier over a loader: loss, top-1 / top-5, the confusion matrix, and the
// first misclassified samples (for the report). Runs in eval mode without autograd, one tidy
// scope per batch, and restores the model's mode afterwards.
import { F, autocast, fakeQuant, noGrad, tidy, type FakeQuantObservers, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import type { DataLoader } from '../data/index.js';
import { ConfusionMatrix, topkCorrect } from './metrics.js';

export type ClassifierModule = Module<[Tensor], Tensor | Tensor[]>;

export interface EvalOptions {
  numClasses: number;
  bf16?: boolean;
  channelsLast?: boolean;
  /** keep up to this many misclassified samples (default 0) */
  maxMisclassified?: number;
  /** average the logits of each image and its horizontal mirror (flip test-time augmentation) */
  flip?: boolean;
  /**
   * also average the views shifted diagonally by +-translate pixels (reflect padding), weighed
   * half as much as the unshifted view, as airbench's test-time augmentation (0: off)
   */
  translate?: number;
  /** quantization-aware training: run with fake-quantized layers on these ranges */
  fakeQuant?: FakeQuantObservers | null;
  /** called after each batch: batches done, batches in all */
  onBatch?: (done: number, total: number) => void;
}

export interface Misclassified {
  /** the sample's index in the evaluated dataset */
  index: number;
  label: number;
  predicted: number;
  /** softmax probability of the prediction */
  confidence: number;
}

export interface EvalResult {
  /** mean cross entropy (no label smoothing) */
  loss: number;
  top1: number;
  top5: number;
  count: number;
  confusion: ConfusionMatrix;
  misclassified: Misclassified[];
}

/** The logits of a forward pass (training-mode auxiliary outputs are dropped). */
export function logitsOf(out: Tensor | Tensor[]): Tensor {
  return Array.isArray(out) ? out[0] : out;
}

/** The image shifted by (dy, dx) pixels with reflect padding: [N, C, H, W] in, same shape out. */
export function translate(x: Tensor, dy: number, dx: number): Tensor {
  const [h, w] = [x.size(2), x.size(3)];
  const p = Math.max(Math.abs(dy), Math.abs(dx));
  if (p >= h || p >= w) throw new RangeError(`translate: a shift of ${p} pixels needs images larger than ${p}x${p}, found ${h}x${w}`);
  return F.pad(x, [p, p, p, p], 'reflect').narrow(2, p - dy, h).narrow(3, p - dx, w);
}

/** The logits averaged over the test-time views EvalOptions asks for (mirror, diagonal shifts). */
function ttaLogits(model: ClassifierModule, x: Tensor, o: EvalOptions): Tensor {
  // each view in its own scope: only its logits outlive it, not its activations
  const once = (v: Tensor): Tensor => tidy(() => logitsOf(forward(model, v, o)).float());
  const mirrored = (v: Tensor): Tensor => (o.flip ? once(v).add(once(v.flip([3]))).div(2) : once(v));
  const t = o.translate ?? 0;
  if (t <= 0) return mirrored(x);
  const shifted = mirrored(translate(x, t, t)).add(mirrored(translate(x, -t, -t)));
  return mirrored(x).mul(0.5).add(shifted.mul(0.25));
}

/** One forward pass with the run's precision, memory format and fake quantization (QAT). */
export function forward(model: ClassifierModule, x: Tensor, o: { bf16?: boolean; channelsLast?: boolean; fakeQuant?: FakeQuantObservers | null }): Tensor | Tensor[] {
  const input = o.channelsLast ? x.contiguous('channelsLast') : x;
  const run = o.fakeQuant ? (): Tensor | Tensor[] => fakeQuant(o.fakeQuant!, () => model.call(input)) : (): Tensor | Tensor[] => model.call(input);
  return o.bf16 ? autocast(run, 'bfloat16') : run();
}

export async function evaluate(model: ClassifierModule, loader: DataLoader, o: EvalOptions): Promise<EvalResult> {
  const confusion = new ConfusionMatrix(o.numClasses);
  const misclassified: Misclassified[] = [];
  const maxMis = o.maxMisclassified ?? 0;
  let lossSum = 0;
  let top1 = 0;
  let top5 = 0;
  let count = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    const total = loader.numBatches;
    for await (const batch of loader.batches(0)) {
      try {
        const r = tidy(() => noGrad(() => {
          const logits = ttaLogits(model, batch.x, o);
          const loss = F.crossEntropy(logits, batch.y, { reduction: 'sum' }).item();
          const [k1, k5] = topkCorrect(logits, batch.y, [1, 5]);
          const probs = logits.softmax(1);
          const [conf, pred] = probs.max(1);
          return { loss, k1, k5, pred: pred.toTypedArray(), conf: conf.toTypedArray() as Float32Array, truth: batch.y.toTypedArray() };
        }));
        const n = r.truth.length;
        lossSum += r.loss;
        top1 += r.k1;
        top5 += r.k5;
        count += n;
        confusion.add(r.truth as ArrayLike<bigint>, r.pred as ArrayLike<bigint>);
        if (misclassified.length < maxMis) {
          const indices = loader.batchIndices(0, batch.index);
          if (indices.length === n) {
            for (let i = 0; i < n && misclassified.length < maxMis; i++) {
              const t = Number(r.truth[i]);
              const p = Number(r.pred[i]);
              if (t !== p) misclassified.push({ index: indices[i], label: t, predicted: p, confidence: r.conf[i] });
            }
          }
        }
      } finally {
        batch.x.dispose();
        batch.y.dispose();
      }
      o.onBatch?.(batch.index + 1, total);
    }
  } finally {
    model.train(wasTraining);
  }
  if (count === 0) throw new Error('evaluate: the evaluation set yielded no samples');
  return { loss: lossSum / count, top1: top1 / count, top5: top5 / count, count, confusion, misclassified };
}
