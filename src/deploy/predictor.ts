// loadPredictor: an exported .onnx file run by ONNX Runtime (onnxruntime-node, CPU), its
// preprocessing taken from the file's metadata (resize, crop, mean/std), answering top-k classes
// with probabilities. The first piece of issue 14's "Run it"; the libtorch engine behind the same
// interface, `convkit predict` and the engine choice come next.
import * as fs from 'node:fs';
import ort from 'onnxruntime-node';
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { centerCropBatch, resizeBatch } from '../data/ops.js';
import { readOnnxMetadata } from '../export/onnx.js';
import type { ChwImage } from '../io/index.js';

export interface PredictorInfo {
  modelName: string | null;
  classNames: string[] | null;
  /** [channels, height, width] (image models), or the per-sample shape */
  inputSize: number[] | null;
  mean: number[] | null;
  std: number[] | null;
  resize: number | null;
  crop: [number, number] | null;
  interpolation: string | null;
  opset: number;
}

export interface Prediction {
  index: number;
  /** the class name, or the index as a string when the file names no classes */
  label: string;
  probability: number;
}

export interface PredictOptions {
  /** the k most probable classes (default 5, at most the number of classes) */
  top?: number;
}

export interface Predictor {
  readonly info: PredictorInfo;
  /**
   * Top-k per sample. A float32 tensor [N, ...inputSize] is taken as the model's input, already
   * preprocessed; a uint8 tensor [N, C, H, W] or a list of CHW images is resized, centre-cropped
   * and normalised as the metadata says.
   */
  predict(input: Tensor | ChwImage[], o?: PredictOptions): Promise<Prediction[][]>;
  /** The raw logits [N, classes] of a preprocessed float32 batch. */
  logits(batch: Tensor): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): Promise<void>;
}

export interface LoadPredictorOptions {
  /** ONNX Runtime's intra-op threads (default: its own choice) */
  threads?: number;
}

function parseMeta<T>(file: string, meta: Record<string, string>, key: string, check: (v: unknown) => boolean, what: string): T | null {
  const raw = meta[key];
  if (raw === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new Error(`${file}: metadata ${key} is not valid JSON`);
  }
  if (!check(v)) throw new Error(`${file}: metadata ${key} must be ${what}, got ${raw.slice(0, 80)}`);
  return v as T;
}

const numList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) > 0;

export function predictorInfo(file: string, bytes: Uint8Array): PredictorInfo {
  const { opset, metadata: m } = readOnnxMetadata(bytes);
  const str = (k: string): string | null => (typeof m[k] === 'string' ? m[k] : null);
  return {
    modelName: str('convkit_model'),
    classNames: parseMeta<string[]>(file, m, 'class_names', (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'a list of strings'),
    inputSize: parseMeta<number[]>(file, m, 'input_size', (v) => numList(v) && (v as number[]).every(posInt), 'a list of positive integers'),
    mean: parseMeta<number[]>(file, m, 'mean', numList, 'a list of numbers'),
    std: parseMeta<number[]>(file, m, 'std', (v) => numList(v) && (v as number[]).every((x) => x > 0), 'a list of positive numbers'),
    resize: parseMeta<number>(file, m, 'resize', posInt, 'a positive integer'),
    crop: parseMeta<[number, number]>(file, m, 'crop', (v) => numList(v) && (v as number[]).length === 2 && (v as number[]).every(posInt), 'a pair of positive integers'),
    interpolation: str('interpolation'),
    opset,
  };
}

/** Opens an exported .onnx file for prediction. */
export async function loadPredictor(file: string, o: LoadPredictorOptions = {}): Promise<Predictor> {
  if (!file.endsWith('.onnx')) throw new Error(`loadPredictor: ${file}: expected an .onnx file (checkpoints through libtorch are not supported yet)`);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const info = predictorInfo(file, bytes);
  const session = await ort.InferenceSession.create(bytes, o.threads ? { intraOpNumThreads: o.threads } : {});
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;

  const logits = async (batch: Tensor): Promise<{ data: Float32Array; dims: number[] }> => {
    if (batch.dtype !== 'float32') throw new TypeError(`predict: a preprocessed batch must be float32, got ${batch.dtype}`);
    const want = info.inputSize;
    if (want && (batch.ndim !== want.length + 1 || want.some((d, i) => batch.size(i + 1) !== d))) {
      throw new Error(`predict: ${file} takes [N, ${want.join(', ')}], got [${batch.shape.join(', ')}]`);
    }
    const feed = new ort.Tensor('float32', batch.contiguous().toTypedArray() as Float32Array, batch.shape);
    const out = (await session.run({ [inputName]: feed }))[outputName];
    return { data: out.data as Float32Array, dims: [...out.dims] };
  };

  const preprocess = (images: Tensor): Tensor => noGrad(() => tidy(() => {
    const { resize, crop, mean, std } = info;
    if (!crop || !mean || !std) throw new Error(`predict: ${file} has no preprocessing metadata (crop, mean, std): give a preprocessed float32 batch`);
    const [, c, h, w] = images.shape;
    if (c !== mean.length) throw new Error(`predict: ${file} takes ${mean.length}-channel images, got ${c} channels`);
    const side = resize ?? Math.min(crop[0], crop[1]);
    // the shorter side to `resize`, keeping the aspect ratio, then the centre crop (torchvision's Resize + CenterCrop)
    const scale = side / Math.min(h, w);
    const resized = resizeBatch(images.float(), [Math.max(crop[0], Math.round(h * scale)), Math.max(crop[1], Math.round(w * scale))]);
    const x = centerCropBatch(resized, crop).div(255);
    const m = tensor(mean).view([1, c, 1, 1]);
    const s = tensor(std).view([1, c, 1, 1]);
    return x.sub(m).div(s).contiguous();
  }));

  const toBatch = (images: ChwImage[]): Tensor => {
    if (images.length === 0) throw new Error('predict: no images');
    const { channels, height, width } = images[0];
    const bad = images.findIndex((im) => im.channels !== channels || im.height !== height || im.width !== width || im.data.length !== channels * height * width);
    if (bad >= 0) throw new Error(`predict: image ${bad} is not ${channels}x${height}x${width} like image 0 (decode them to one size first)`);
    const all = new Uint8Array(images.length * channels * height * width);
    images.forEach((im, i) => all.set(im.data, i * im.data.length));
    return tensor(all, { shape: [images.length, channels, height, width] });
  };

  return {
    info,
    logits,
    async predict(input, po = {}) {
      let batch: Tensor;
      if (Array.isArray(input)) {
        const raw = toBatch(input);
        batch = preprocess(raw);
        raw.dispose();
      } else batch = input.dtype === 'uint8' ? preprocess(input) : input;
      try {
        const { data, dims } = await logits(batch);
        return topK(data, dims, po.top ?? 5, info.classNames);
      } finally {
        if (batch !== input) batch.dispose();
      }
    },
    async dispose() {
      await session.release();
    },
  };
}

/** Softmax and the k best classes of each row of logits [N, C]. */
export function topK(data: Float32Array, dims: number[], k: number, classes: string[] | null): Prediction[][] {
  const [n, c] = dims;
  const out: Prediction[][] = [];
  for (let i = 0; i < n; i++) {
    const row = data.subarray(i * c, (i + 1) * c);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const order = Array.from({ length: c }, (_, j) => j).sort((a, b) => row[b] - row[a]).slice(0, Math.max(1, Math.min(k, c)));
    out.push(order.map((j) => ({ index: j, label: classes?.[j] ?? String(j), probability: Math.exp(row[j] - max) / sum })));
  }
  return out;
}
