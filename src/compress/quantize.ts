// Post-training static int8 quantization: a checkpoint (traced and BatchNorm-folded by export) or a
// float ONNX file, calibrated on the dataset's own training images with the evaluation
// preprocessing, rewritten in QDQ form, written with the original metadata_props plus
// `convkit.quantized` (the layers in int8 and in float, the method, the calibration set).
//
// Calibration runs the float graph on ONNX Runtime with every observed activation made a graph
// output: the graph convkit quantizes is the ONNX graph (after BatchNorm folding, with export's
// tensor names), so observing that very graph gives each QuantizeLinear its range by name, with no
// mapping from engine tensors to ONNX tensors to keep in step; ORT is also the engine the result
// runs on. The traced graph is convkit's own forward: ORT's float outputs match it (export tests).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ort from 'onnxruntime-node';
import { noGrad, tidy } from '../engine/index.js';
import { resizeAndCenterCrop } from '../data/ops.js';
import { encodeModel, foldBatchNorm, loadExportSource, metadataEntries, opHistogram, ortSessionOptions, readModelInfo, traceGraph, type Graph } from '../export/index.js';
import { readInputFile, writeFileAtomic } from '../io/index.js';
import { listModels } from '../models/index.js';
import { evalLoader, limitDataset, openDataset } from '../train/data.js';
import { DATASETS, RecipeError } from '../train/recipe.js';
import { packageVersion } from '../io/version.js';
import {
  CALIB_METHODS, DEFAULT_BINS, needsHistogram, observedRange, TensorObserver, type CalibMethod, type CalibOptions, type Range,
} from './quantize_calib.js';
import { calibrationModel, readOnnxGraph } from './quantize_onnx.js';
import { layerName, skipsFor, toQdq, weightedNodes, type FloatLayer, type QuantizedLayer } from './quantize_qdq.js';

export const QUANTIZED_KEY = 'convkit.quantized';
/** the salt of the calibration subset: other images than `--limit-test` picks, from the training split */
const CALIB_SALT = 0xca1b;

export interface CalibrationBatch {
  /** a preprocessed float32 batch, [N, ...the model's input] */
  data: Float32Array;
  dims: number[];
}

export interface SensitivityOptions {
  /** held-out training images the scan measures on (default 200; never the calibration images) */
  held?: number;
  /** keep the worst layers in float until the int8 model agrees with float on this share of the held images (default 0.99) */
  targetAgreement?: number;
  /** at most this many layers in float by the scan (default 4) */
  maxFloat?: number;
}

export interface SensitivityRow {
  layer: string;
  node: string;
  op: string;
  /** ||int8 - float||^2 / ||float||^2 of the logits with only this layer quantized */
  relError: number;
  /** top-1 agreement with the float model with only this layer quantized */
  agreement: number;
  /** left in float by the scan */
  keptFloat: boolean;
}

export interface QuantizeOptions {
  /** the dataset whose training images calibrate (fashion-mnist, mnist, cifar10, cifar100, folder, synthetic) */
  calib: string;
  dataRoot?: string;
  /** calibration images (default 512) */
  calibSize?: number;
  method?: CalibMethod;
  calibOptions?: CalibOptions;
  /** rules (first, last, depthwise, se) or layer names left in float */
  skip?: string[];
  /** measure each layer's sensitivity and keep the worst in float */
  sensitivity?: boolean | SensitivityOptions;
  /** the file to write (atomically; nothing is written on an error) */
  file?: string;
  /** checkpoints convkit did not write: the registered model */
  model?: string;
  /** calibration batch size (default 32) */
  batchSize?: number;
  /** ONNX Runtime's intra-op threads */
  threads?: number;
  onProgress?: (message: string) => void;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  graph: Graph;
  quantized: QuantizedLayer[];
  float: FloatLayer[];
  sensitivity: SensitivityRow[] | null;
  /** agreement of the written int8 model's top-1 with the float model on the held images (with --sensitivity) */
  heldAgreement: number | null;
  method: CalibMethod;
  calibImages: number;
  ops: Record<string, number>;
}

export interface FloatSource {
  graph: Graph;
  opset: number;
  metadata: [string, string][];
  label: string;
}

const isOnnxPath = (spec: string): boolean => /\.onnx$/i.test(spec);

/** The float graph to quantize, BatchNorm folded, with the metadata to carry over. */
export function loadFloatGraph(spec: string, o: { model?: string } = {}): FloatSource {
  if (isOnnxPath(spec)) {
    const bytes = readInputFile(spec);
    const m = readOnnxGraph(spec, bytes);
    if (m.graph.nodes.some((n) => n.op === 'QuantizeLinear' || n.op === 'DequantizeLinear' || n.op.startsWith('QLinear'))) {
      throw new Error(`${spec} is already quantized (it has QuantizeLinear/DequantizeLinear nodes): quantize the float model`);
    }
    if (m.metadata.some(([k]) => k === QUANTIZED_KEY)) throw new Error(`${spec} is already quantized (metadata ${QUANTIZED_KEY})`);
    return { graph: foldBatchNorm(m.graph), opset: m.opset, metadata: m.metadata, label: spec };
  }
  if (!fs.existsSync(spec)) throw new Error(`${spec}: no such file or folder (give a checkpoint, a run folder or a model.onnx)`);
  const src = loadExportSource(spec, { model: o.model });
  try {
    const graph = traceGraph(src.model, src.example, {});
    return { graph, opset: 17, metadata: metadataEntries(src.metadata, src.example.shape.slice(1)), label: spec };
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
}

function metaJson<T>(label: string, meta: [string, string][], key: string): T | undefined {
  const raw = meta.find(([k]) => k === key)?.[1];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new Error(`${label}: metadata ${key} is not valid JSON`);
  }
}

/**
 * Calibration images: a seeded subset of the dataset's training split, through the evaluation
 * pipeline (no augmentation) and the model's own normalisation, resized and centre-cropped to the
 * model's input as `convkit eval` does.
 */
export async function loadCalibrationImages(src: FloatSource, dataset: string, count: number, o: { dataRoot?: string; batchSize?: number; split?: 'train' | 'test' } = {}): Promise<CalibrationBatch[]> {
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new RecipeError(`--calib: unknown dataset '${dataset}': expected one of ${DATASETS.join(', ')}`);
  const inputSize = metaJson<number[]>(src.label, src.metadata, 'input_size');
  const crop = metaJson<[number, number]>(src.label, src.metadata, 'crop');
  const mean = metaJson<number[]>(src.label, src.metadata, 'mean');
  const std = metaJson<number[]>(src.label, src.metadata, 'std');
  if (!inputSize || inputSize.length !== 3 || !crop || !mean || !std) {
    throw new Error(`${src.label}: not an image classifier with preprocessing metadata (input_size [C, H, W], crop, mean, std): cannot calibrate it on ${dataset}`);
  }
  const channels = inputSize[0];
  const modelName = src.metadata.find(([k]) => k === 'convkit_model')?.[1];
  const entry = listModels().find((e) => e.name === modelName);
  const full = openDataset({
    dataset, dataRoot: o.dataRoot ?? null, imageSize: crop, inChannels: channels, numClasses: null, seed: 0, limitTrain: null, limitTest: null,
  }, o.split ?? 'train', entry?.config);
  try {
    if (full.inputShape[0] !== channels) throw new RecipeError(`${src.label} takes ${channels}-channel images but ${dataset} has ${full.inputShape[0]}-channel images`);
    const data = limitDataset(full, count, 0, CALIB_SALT);
    const loader = evalLoader(data, { evalBatchSize: o.batchSize ?? 32, augment: [], prefetch: 2, seed: 0 }, mean, std);
    const out: CalibrationBatch[] = [];
    for await (const batch of loader.batches(0)) {
      try {
        const x = noGrad(() => tidy(() => resizeAndCenterCrop(batch.x.float(), crop).contiguous()));
        out.push({ data: Float32Array.from(x.toTypedArray() as Float32Array), dims: x.shape });
        if (x !== batch.x) x.dispose();
      } finally {
        batch.x.dispose();
        batch.y.dispose();
      }
    }
    return out;
  } finally {
    full.dispose?.();
  }
}

/** Checks calibration batches against the graph's input: rank, channels and fixed sizes. */
export function checkCalibration(g: Graph, batches: CalibrationBatch[], label: string): void {
  if (batches.length === 0) throw new Error(`${label}: no calibration images`);
  const want = g.inputs[0].shape;
  batches.forEach((b, i) => {
    const ok = b.dims.length === want.length && b.dims.every((d, k) => typeof want[k] !== 'number' || want[k] === d) &&
      b.data.length === b.dims.reduce((a, c) => a * c, 1);
    if (!ok) throw new Error(`${label}: calibration batch ${i} has shape [${b.dims.join(', ')}] but the model's input '${g.inputs[0].name}' is [${want.join(', ')}]`);
  });
}

async function session(bytes: Uint8Array, threads?: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, ortSessionOptions(threads));
}

/** The activations a quantized graph may need ranges of: what the quantizable ops read and write. */
function observedTensors(g: Graph): string[] {
  const ops = new Set(['Conv', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'GlobalAveragePool', 'AveragePool', 'Sigmoid', 'MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Relu', 'Clip']);
  const floatOk = (t: string): boolean => !!t && !g.initializers.has(t) && (g.valueInfo.get(t)?.dtype ?? 'float32') === 'float32';
  const s = new Set<string>();
  for (const n of g.nodes) {
    if (!ops.has(n.op)) continue;
    for (const t of [...n.inputs, ...n.outputs]) if (floatOk(t)) s.add(t);
  }
  // shape inputs (Reshape's second) are int64: drop those the value info marks, and those no op makes float
  for (const n of g.nodes) if (n.op === 'Reshape' && n.inputs[1]) s.delete(n.inputs[1]);
  return [...s];
}

/** Floats per sample of the observed activations, from the traced shapes (0 when a shape is unknown). */
function activationFloats(g: Graph, names: string[]): number {
  let total = 0;
  for (const n of names) {
    const v = g.valueInfo.get(n) ?? g.inputs.find((i) => i.name === n);
    if (!v || v.shape.length === 0) return 0;
    total += v.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
  }
  return total;
}

/** The calibrated range of every observed activation (one pass for minmax, two for the histogram methods). */
export async function calibrate(src: FloatSource, batches: CalibrationBatch[], method: CalibMethod, o: { calibOptions?: CalibOptions; threads?: number; onProgress?: (m: string) => void } = {}): Promise<Map<string, Range>> {
  if (!(CALIB_METHODS as readonly string[]).includes(method)) throw new RangeError(`method must be one of ${CALIB_METHODS.join(', ')}, got '${String(method)}'`);
  checkCalibration(src.graph, batches, src.label);
  const names = observedTensors(src.graph);
  const sess = await session(calibrationModel(src.graph, src.opset, names), o.threads);
  const inputName = src.graph.inputs[0].name;
  const obs = new Map(names.map((n) => [n, new TensorObserver()]));
  const fetch = names.filter((n) => sess.outputNames.includes(n));
  // every activation of a batch comes back at once: ResNet-50 at 224 px holds ~100 MB of them per
  // image, so batches are cut to keep one run's outputs near 256 MB
  const perSample = activationFloats(src.graph, names);
  const chunk = perSample > 0 ? Math.max(1, Math.min(64, Math.floor((256 << 20) / (4 * perSample)))) : 8;
  const run = async (visit: (o: TensorObserver, data: Float32Array) => void, pass: string): Promise<void> => {
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i];
      const per = b.data.length / b.dims[0];
      for (let s = 0; s < b.dims[0]; s += chunk) {
        const n = Math.min(chunk, b.dims[0] - s);
        const res = await sess.run({ [inputName]: new ort.Tensor('float32', b.data.subarray(s * per, (s + n) * per), [n, ...b.dims.slice(1)]) }, fetch);
        for (const [name, t] of Object.entries(res)) {
          const ob = obs.get(name);
          if (ob && t.type === 'float32') visit(ob, t.data as Float32Array);
          t.dispose();
        }
      }
      o.onProgress?.(`calibrating (${pass}): batch ${i + 1}/${batches.length}`);
    }
  };
  try {
    await run((ob, d) => ob.observeRange(d), 'ranges');
    if (needsHistogram(method)) {
      for (const ob of obs.values()) if (ob.count > 0) ob.startHistogram(o.calibOptions?.bins ?? DEFAULT_BINS, method === 'entropy');
      await run((ob, d) => { if (ob.hist) ob.observeHistogram(d); }, 'histograms');
    }
  } finally {
    await sess.release();
  }
  const ranges = new Map<string, Range>();
  // the model's input keeps its whole range: preprocessing bounds it, and on images whose pixels
  // pile up at one value (Fashion-MNIST's black background) a clipping method cuts the bright
  // pixels, the signal itself (entropy: -12.5 points on the default model)
  for (const [name, ob] of obs) if (ob.count > 0) ranges.set(name, observedRange(ob, name === inputName ? 'minmax' : method, o.calibOptions));
  return ranges;
}

async function logitsOf(bytes: Uint8Array, inputName: string, batches: CalibrationBatch[], threads?: number): Promise<Float32Array[]> {
  const s = await session(bytes, threads);
  try {
    const out: Float32Array[] = [];
    for (const b of batches) {
      const r = await s.run({ [inputName]: new ort.Tensor('float32', b.data, b.dims) });
      const t = r[s.outputNames[0]];
      out.push(Float32Array.from(t.data as Float32Array));
      for (const v of Object.values(r)) v.dispose();
    }
    return out;
  } finally {
    await s.release();
  }
}

/** Relative squared error and top-1 agreement of logits against the float model's ([N, classes] per batch). */
export function compareLogits(ref: Float32Array[], got: Float32Array[], classes: number): { relError: number; agreement: number } {
  let num = 0, den = 0, agree = 0, n = 0;
  const argmax = (a: Float32Array, r: number): number => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (a[r * classes + c] > a[r * classes + best]) best = c;
    return best;
  };
  ref.forEach((a, b) => {
    const g = got[b];
    for (let i = 0; i < a.length; i++) { const d = g[i] - a[i]; num += d * d; den += a[i] * a[i]; }
    for (let r = 0; r < a.length / classes; r++) { if (argmax(a, r) === argmax(g, r)) agree++; n++; }
  });
  return { relError: den > 0 ? num / den : num, agreement: n ? agree / n : 1 };
}

/** The QDQ model's bytes: the float model's metadata_props and the quantization record. */
function encodeQuantized(src: FloatSource, graph: Graph, record: Record<string, unknown>): Uint8Array {
  const metadata = src.metadata.filter(([k]) => k !== QUANTIZED_KEY);
  metadata.push([QUANTIZED_KEY, JSON.stringify(record)]);
  return encodeModel(graph, { opset: src.opset, producerVersion: packageVersion(), metadata });
}

/**
 * Quantizes a checkpoint, run folder or float .onnx file to int8 (QDQ), calibrated on `o.calib`'s
 * training images. Writes `o.file` atomically when given; on any error nothing is written.
 */
export async function quantizeModel(spec: string, o: QuantizeOptions): Promise<QuantizeResult> {
  const method = o.method ?? 'minmax';
  if (!(CALIB_METHODS as readonly string[]).includes(method)) throw new RangeError(`method must be one of ${CALIB_METHODS.join(', ')}, got '${String(method)}'`);
  const calibSize = o.calibSize ?? 512;
  if (!Number.isInteger(calibSize) || calibSize < 1) throw new RangeError(`calibSize must be a positive integer, got ${calibSize}`);
  const sens = o.sensitivity ? (o.sensitivity === true ? {} : o.sensitivity) : null;
  const held = sens ? sens.held ?? 200 : 0;
  const src = loadFloatGraph(spec, { model: o.model });
  // a bad --skip fails before the images load
  skipsFor(src.graph, o.skip ?? []);
  const progress = o.onProgress ?? ((): void => undefined);
  progress(`loading ${calibSize + held} calibration images from ${o.calib}`);
  const all = await loadCalibrationImages(src, o.calib, calibSize + held, { dataRoot: o.dataRoot, batchSize: o.batchSize });
  // the first calibSize images calibrate; the rest, never seen by calibration, judge the scan
  const calibBatches: CalibrationBatch[] = [];
  const heldBatches: CalibrationBatch[] = [];
  let seen = 0;
  for (const b of all) {
    const per = b.data.length / b.dims[0];
    const take = Math.max(0, Math.min(b.dims[0], calibSize - seen));
    if (take > 0) calibBatches.push({ data: b.data.subarray(0, take * per), dims: [take, ...b.dims.slice(1)] });
    if (take < b.dims[0]) heldBatches.push({ data: b.data.subarray(take * per), dims: [b.dims[0] - take, ...b.dims.slice(1)] });
    seen += b.dims[0];
  }
  return quantizeBatches(src, calibBatches, heldBatches, { ...o, calibLabel: o.calib });
}

/**
 * The quantization proper, on calibration batches the caller prepared (preprocessed float32
 * inputs) and, for the sensitivity scan, held-out batches.
 */
export async function quantizeBatches(src: FloatSource, calibBatches: CalibrationBatch[], heldBatches: CalibrationBatch[],
  o: Omit<QuantizeOptions, 'calib' | 'dataRoot' | 'calibSize' | 'model' | 'batchSize'> & { calibLabel?: string }): Promise<QuantizeResult> {
  const method = o.method ?? 'minmax';
  const sens = o.sensitivity ? (o.sensitivity === true ? {} : o.sensitivity) : null;
  const skip = skipsFor(src.graph, o.skip ?? []);
  const progress = o.onProgress ?? ((): void => undefined);
  const ranges = await calibrate(src, calibBatches, method, { calibOptions: o.calibOptions, threads: o.threads, onProgress: progress });

  let sensitivity: SensitivityRow[] | null = null;
  let heldAgreement: number | null = null;
  if (sens) {
    if (heldBatches.length === 0) throw new Error(`${o.calibLabel ?? 'calibration'}: no images left for the sensitivity scan after the calibration images`);
    const inputName = src.graph.inputs[0].name;
    const floatBytes = encodeModel(src.graph, { opset: src.opset, producerVersion: packageVersion(), metadata: [] });
    const ref = await logitsOf(floatBytes, inputName, heldBatches, o.threads);
    const classes = ref[0].length / heldBatches[0].dims[0];
    const candidates = weightedNodes(src.graph).filter((n) => !skip.has(n.name));
    sensitivity = [];
    for (const [i, n] of candidates.entries()) {
      const one = toQdq(src.graph, ranges, { only: new Set([n.name]), skip });
      if (one.quantized.length === 0) continue;
      const got = await logitsOf(encodeModel(one.graph, { opset: src.opset, producerVersion: packageVersion(), metadata: [] }), inputName, heldBatches, o.threads);
      sensitivity.push({ layer: layerName(n), node: n.name, op: n.op, ...compareLogits(ref, got, classes), keptFloat: false });
      progress(`sensitivity: layer ${i + 1}/${candidates.length}`);
    }
    const worst = [...sensitivity].sort((a, b) => b.relError - a.relError);
    const target = sens.targetAgreement ?? 0.99;
    const maxFloat = sens.maxFloat ?? 4;
    for (let k = 0; ; k++) {
      const full = toQdq(src.graph, ranges, { skip });
      const got = await logitsOf(encodeModel(full.graph, { opset: src.opset, producerVersion: packageVersion(), metadata: [] }), inputName, heldBatches, o.threads);
      heldAgreement = compareLogits(ref, got, classes).agreement;
      if (heldAgreement >= target || k >= maxFloat || k >= worst.length) break;
      skip.set(worst[k].node, 'sensitivity');
      worst[k].keptFloat = true;
    }
  }

  const q = toQdq(src.graph, ranges, { skip });
  const record = {
    method, calibration: { dataset: o.calibLabel ?? 'given batches', images: calibBatches.reduce((a, b) => a + b.dims[0], 0) },
    weights: 'int8 symmetric per output channel', activations: 'uint8 asymmetric per tensor',
    layers: q.quantized.map((l) => l.name), float: q.float.map((l) => ({ layer: l.name, reason: l.reason })),
  };
  const bytes = encodeQuantized(src, q.graph, record);
  if (o.file) writeFileAtomic(o.file, bytes);
  return {
    bytes, graph: q.graph, quantized: q.quantized, float: q.float, sensitivity, heldAgreement, method,
    calibImages: record.calibration.images, ops: opHistogram(q.graph),
  };
}

export interface QuantizationReport {
  file: string;
  /** the `convkit.quantized` record, or null for a file convkit did not quantize */
  record: { method?: string; layers?: string[]; float?: { layer: string; reason: string }[]; calibration?: { dataset: string; images: number } } | null;
  /** op counts of the file */
  ops: Record<string, number>;
  /** op counts after ONNX Runtime's graph optimisation: the kernels that run (QLinearConv, QGemm, ...) */
  runtimeOps: Record<string, number>;
}

/** Which layers of an ONNX file are int8, as written and as ONNX Runtime runs them. */
export async function quantizationReport(file: string): Promise<QuantizationReport> {
  const bytes = readInputFile(file);
  let info: ReturnType<typeof readModelInfo>;
  try {
    info = readModelInfo(bytes);
  } catch (e) {
    throw new Error(`${file} is not an ONNX model (${(e as Error).message})`, { cause: e });
  }
  if (!info.opset) throw new Error(`${file} is not an ONNX model (no opset_import in it)`);
  const raw = info.metadata[QUANTIZED_KEY];
  let record: QuantizationReport['record'] = null;
  if (raw !== undefined) {
    try {
      record = JSON.parse(raw) as QuantizationReport['record'];
    } catch {
      throw new Error(`${file}: metadata ${QUANTIZED_KEY} is not valid JSON`);
    }
  }
  return { file, record, ops: info.ops, runtimeOps: await runtimeOps(bytes) };
}

/** The op counts of the graph ONNX Runtime runs after its optimisations (QDQ groups fused into integer kernels). */
export async function runtimeOps(bytes: Uint8Array, threads = 1): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-ort-'));
  try {
    const out = path.join(dir, 'optimized.onnx');
    // severity 3: ORT warns that an optimised file may hold machine-specific kernels; it is only read here
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, graphOptimizationLevel: 'all', optimizedModelFilePath: out, logSeverityLevel: 3 });
    await s.release();
    return readModelInfo(fs.readFileSync(out)).ops;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
