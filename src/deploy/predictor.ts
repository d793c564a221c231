// The predictor's interface, its preprocessing (from the model's metadata: resize, crop,
// mean/std) and top-k, over any engine that turns a preprocessed batch into logits; the ONNX
// Runtime engine for .onnx bytes. load.ts picks the engine for a file.
import ort from 'onnxruntime-node';
import { noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { resizeAndCenterCrop } from '../data/ops.js';
import { readOnnxMetadata } from '../export/onnx.js';
import { ortSessionOptions } from '../export/session_options.js';
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
  /** the ONNX file's opset (null: a checkpoint run by libtorch) */
  opset: number | null;
}

export type EngineName = 'onnxruntime' | 'libtorch';

/** How libtorch runs the model (ONNX Runtime: null). */
export interface Precision {
  bf16: boolean;
  channelsLast: boolean;
}

/** Which engine runs the model, and why. */
export interface EngineChoice {
  engine: EngineName;
  precision: Precision | null;
  /** 'onnx-file': an .onnx file runs on ONNX Runtime; 'asked': forced by an option; 'probe': the fastest timed; 'fallback': the only one that could run it */
  reason: 'onnx-file' | 'asked' | 'probe' | 'fallback';
  /** the probe's median milliseconds per batch of each candidate (reason 'probe') */
  timings?: Record<string, number>;
  /** milliseconds the choice took: the export in memory, and the check and timing of the candidates */
  exportMs?: number;
  probeMs?: number;
  /** why another engine was not a candidate (e.g. the export failed) */
  note?: string;
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
  readonly engine: EngineName;
  /** libtorch's precision and memory format (null on ONNX Runtime) */
  readonly precision: Precision | null;
  readonly choice: EngineChoice;
  /**
   * Top-k per sample. A float32 tensor [N, ...inputSize] is taken as the model's input, already
   * preprocessed; a uint8 tensor [N, C, H, W] or a list of CHW images is resized, centre-cropped
   * and normalised as the metadata says.
   */
  predict(input: Tensor | ChwImage[], o?: PredictOptions): Promise<Prediction[][]>;
  /** uint8 images [N, C, H, W] (or a list of CHW images) resized, cropped and normalised: the model's float32 input */
  preprocess(images: Tensor | ChwImage[]): Tensor;
  /** The raw logits [N, classes] of a preprocessed float32 batch. */
  logits(batch: Tensor): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): Promise<void>;
}

/** An engine: logits [N, classes] of a float32 batch already checked against the input size. */
export interface EngineBackend {
  choice: EngineChoice;
  logits(batch: Tensor): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): Promise<void>;
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

/** The description an exported file carries; `file` names it in every error (a file that is not ONNX included). */
export function predictorInfo(file: string, bytes: Uint8Array): PredictorInfo {
  let parsed: ReturnType<typeof readOnnxMetadata>;
  try {
    parsed = readOnnxMetadata(bytes);
  } catch (e) {
    throw new Error(`${file} is not an ONNX model (${(e as Error).message})`, { cause: e });
  }
  const { opset, metadata: m } = parsed;
  if (!opset) throw new Error(`${file} is not an ONNX model (no opset_import in it)`);
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

/** An ONNX Runtime session on ONNX bytes (a file's, or a model exported in memory). */
export async function onnxBackend(bytes: Uint8Array, choice: EngineChoice, threads?: number): Promise<EngineBackend> {
  // no spinning (ortSessionOptions): sharp decodes the next batch and libtorch's probe passes are
  // timed on the same cores
  const session = await ort.InferenceSession.create(bytes, ortSessionOptions(threads));
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  return {
    choice,
    async logits(batch) {
      const feed = new ort.Tensor('float32', batch.contiguous().toTypedArray() as Float32Array, batch.shape);
      const out = (await session.run({ [inputName]: feed }))[outputName];
      return { data: out.data as Float32Array, dims: [...out.dims] };
    },
    async dispose() {
      await session.release();
    },
  };
}

/** The predictor over an engine: input checks, preprocessing from info, top-k. */
export function makePredictor(file: string, info: PredictorInfo, backend: EngineBackend): Predictor {
  let disposed = false;
  const logits = async (batch: Tensor): Promise<{ data: Float32Array; dims: number[] }> => {
    if (disposed) throw new Error(`predict: the predictor of ${file} was disposed`);
    if (batch.dtype !== 'float32') throw new TypeError(`predict: a preprocessed batch must be float32, got ${batch.dtype}`);
    const want = info.inputSize;
    if (want && (batch.ndim !== want.length + 1 || want.some((d, i) => batch.size(i + 1) !== d))) {
      throw new Error(`predict: ${file} takes [N, ${want.join(', ')}], got [${batch.shape.join(', ')}]`);
    }
    if (batch.ndim < 1 || batch.size(0) < 1) throw new Error(`predict: an empty batch [${batch.shape.join(', ')}]`);
    return backend.logits(batch);
  };

  const preprocessRaw = (images: Tensor): Tensor => noGrad(() => tidy(() => {
    const { resize, crop, mean, std } = info;
    if (!crop || !mean || !std) throw new Error(`predict: ${file} has no preprocessing metadata (crop, mean, std): give a preprocessed float32 batch`);
    if (images.ndim !== 4) throw new Error(`predict: images must be [N, C, H, W], got [${images.shape.join(', ')}]`);
    const c = images.size(1);
    if (c !== mean.length) throw new Error(`predict: ${file} takes ${mean.length}-channel images, got ${c} channels`);
    const x = resizeAndCenterCrop(images.float(), crop, resize ?? undefined).div(255);
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

  const preprocess = (input: Tensor | ChwImage[]): Tensor => {
    if (!Array.isArray(input)) {
      if (input.dtype !== 'uint8') throw new TypeError(`preprocess: images must be uint8, got ${input.dtype}`);
      return preprocessRaw(input);
    }
    const raw = toBatch(input);
    try {
      return preprocessRaw(raw);
    } finally {
      raw.dispose();
    }
  };

  return {
    info,
    engine: backend.choice.engine,
    precision: backend.choice.precision,
    choice: backend.choice,
    logits,
    preprocess,
    async predict(input, po = {}) {
      const batch = Array.isArray(input) || input.dtype === 'uint8' ? preprocess(input) : input;
      try {
        const { data, dims } = await logits(batch);
        return topK(data, dims, po.top ?? 5, info.classNames);
      } finally {
        if (batch !== input) batch.dispose();
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await backend.dispose();
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
