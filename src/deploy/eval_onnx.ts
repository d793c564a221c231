// `convkit eval model.onnx <dataset>`: a shipped model's accuracy through ONNX Runtime on the data
// (and the seeded subset) its checkpoint is evaluated on, with the file's own normalisation, so
// the two figures can be compared. The same report as a checkpoint's evaluation.
import { F, noGrad, tensor, tidy } from '../engine/index.js';
import { resizeAndCenterCrop } from '../data/ops.js';
import { listModels } from '../models/index.js';
import { evalLoader, limitDataset, normalization, openDataset, TEST_SUBSET_SALT } from '../train/data.js';
import type { CheckpointEvaluation } from '../train/eval_checkpoint.js';
import { ConfusionMatrix, topkCorrect } from '../train/metrics.js';
import { DATASETS, RecipeError } from '../train/recipe.js';
import { loadPredictor } from './load.js';

export interface OnnxEvalOptions {
  dataRoot?: string;
  split?: 'train' | 'test';
  /** a seeded random subset of n images (those `convkit train --limit-test n` picks with seed 0) */
  limit?: number;
  batchSize?: number;
  /** image folders: decode to this size (default: the model's input size) */
  imageSize?: [number, number];
  /** ONNX Runtime's intra-op threads */
  threads?: number;
  onBatch?: (done: number, total: number) => void;
}

export type OnnxEvaluation = CheckpointEvaluation;

export async function evaluateOnnx(file: string, dataset: string, o: OnnxEvalOptions = {}): Promise<OnnxEvaluation> {
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new RecipeError(`unknown dataset '${dataset}': expected one of ${DATASETS.join(', ')}`);
  const p = await loadPredictor(file, { engine: 'onnxruntime', threads: o.threads });
  try {
    const { inputSize, crop, classNames } = p.info;
    if (!inputSize || inputSize.length !== 3 || !crop) throw new Error(`${file}: not an image classifier with preprocessing metadata (input_size [C, H, W], crop): cannot evaluate it on ${dataset}`);
    const channels = inputSize[0];
    const entry = listModels().find((e) => e.name === p.info.modelName);
    const split = o.split ?? 'test';
    const full = openDataset({
      dataset, dataRoot: o.dataRoot ?? null, imageSize: o.imageSize ?? crop, inChannels: channels,
      numClasses: classNames?.length ?? null, seed: 0, limitTrain: null, limitTest: null,
    }, split, entry?.config);
    try {
      const data = limitDataset(full, o.limit ?? null, 0, TEST_SUBSET_SALT);
      if (full.inputShape[0] !== channels) throw new RecipeError(`${file} takes ${channels}-channel images but ${dataset} has ${full.inputShape[0]}-channel images`);
      const { mean, std } = p.info.mean && p.info.std ? { mean: p.info.mean, std: p.info.std } : normalization({ mean: null, std: null, dataset, init: null }, channels, entry?.config);
      const loader = evalLoader(data, { evalBatchSize: o.batchSize ?? 500, augment: [], prefetch: 2, seed: 0 }, mean, std);
      let confusion: ConfusionMatrix | null = null;
      let lossSum = 0, top1 = 0, top5 = 0, count = 0;
      for await (const batch of loader.batches(0)) {
        try {
          // a dataset at another size than the model's input: resized and centre-cropped as the predictor does
          const x = noGrad(() => tidy(() => resizeAndCenterCrop(batch.x.float(), crop).contiguous()));
          let out;
          try {
            out = await p.logits(x);
          } finally {
            if (x !== batch.x) x.dispose();
          }
          const numClasses = out.dims[1];
          if (numClasses < full.classes.length) throw new RecipeError(`${file} has ${numClasses} outputs but ${dataset} has ${full.classes.length} classes`);
          confusion ??= new ConfusionMatrix(numClasses);
          const r = noGrad(() => tidy(() => {
            const logits = tensor(out.data, { shape: out.dims });
            const loss = F.crossEntropy(logits, batch.y, { reduction: 'sum' }).item();
            const [k1, k5] = topkCorrect(logits, batch.y, [1, 5]);
            return { loss, k1, k5, pred: logits.argmax(1).toTypedArray(), truth: batch.y.toTypedArray() };
          }));
          lossSum += r.loss;
          top1 += r.k1;
          top5 += r.k5;
          count += r.truth.length;
          confusion.add(r.truth as ArrayLike<bigint>, r.pred as ArrayLike<bigint>);
        } finally {
          batch.x.dispose();
          batch.y.dispose();
        }
        o.onBatch?.(batch.index + 1, loader.numBatches);
      }
      if (count === 0 || !confusion) throw new Error(`evaluate: ${dataset} ${split} yielded no samples`);
      const result = { loss: lossSum / count, top1: top1 / count, top5: top5 / count, count, confusion, misclassified: [] };
      return {
        checkpoint: file, model: p.info.modelName ?? 'onnx', dataset, split, weights: 'model', tta: { flip: false, translate: 0 },
        classes: full.classes, result, report: confusion.report(full.classes),
      };
    } finally {
      full.dispose?.();
    }
  } finally {
    await p.dispose();
  }
}
