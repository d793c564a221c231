// loadPredictor: one interface over two engines. An .onnx file runs on ONNX Runtime; a convkit
// checkpoint (training checkpoint, model.safetensors, run folder) runs on libtorch, in fp32 or
// bf16 autocast + channels-last, or on ONNX Runtime over the model exported in memory, whichever
// a short timed probe finds fastest on this machine (or the engine asked for).
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { cpuHasBf16, randn, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { exportOnnx, type ExportMetadata } from '../export/export.js';
import { loadExportSource } from '../export/source.js';
import { isOnnxFile } from '../io/files.js';
import { layOut, libtorchBackend, libtorchLogits } from './libtorch.js';
import { makePredictor, onnxBackend, predictorInfo, type EngineBackend, type EngineChoice, type EngineName, type Precision, type Predictor, type PredictorInfo } from './predictor.js';

export interface LoadPredictorOptions {
  /** 'auto' (default): an .onnx file on ONNX Runtime; a checkpoint on the engine the probe finds fastest */
  engine?: 'auto' | EngineName;
  /** libtorch: 'fp32', 'bf16' (autocast, channels-last) or 'auto' (default: timed where the CPU has bf16) */
  precision?: 'auto' | 'fp32' | 'bf16';
  /** ONNX Runtime's intra-op threads (default: its own choice) */
  threads?: number;
  /** checkpoints: the registered model, for weights files convkit did not write */
  model?: string;
  numClasses?: number;
  /** checkpoints: the input's [height, width] (default: the training data's, else the model's) */
  imageSize?: [number, number];
  /** training checkpoints: the EMA weights */
  ema?: boolean;
  /** file is a registered model's name: its published ImageNet weights (cached, else downloaded) */
  pretrained?: boolean;
  /** the probe's batch size (default 8) */
  probeBatch?: number;
  /** the probe's time budget in milliseconds, all candidates together (default 1200) */
  probeMs?: number;
}

export const ENGINES: readonly EngineName[] = ['onnxruntime', 'libtorch'];
const FP32: Precision = { bf16: false, channelsLast: false };
const BF16: Precision = { bf16: true, channelsLast: true };
/** bf16 must be this many times faster than the best fp32 path: a near tie keeps fp32's numerics (as training's probe) */
const BF16_MARGIN = 1.1;

function checkOptions(o: LoadPredictorOptions): void {
  if (o.engine !== undefined && o.engine !== 'auto' && !ENGINES.includes(o.engine)) throw new RangeError(`loadPredictor: engine must be auto, ${ENGINES.join(' or ')}, got '${String(o.engine)}'`);
  if (o.precision !== undefined && !['auto', 'fp32', 'bf16'].includes(o.precision)) throw new RangeError(`loadPredictor: precision must be auto, fp32 or bf16, got '${String(o.precision)}'`);
  if (o.engine === 'onnxruntime' && o.precision === 'bf16') throw new RangeError('loadPredictor: precision bf16 is libtorch\'s (ONNX Runtime runs the fp32 graph)');
  for (const k of ['threads', 'probeBatch', 'probeMs'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new RangeError(`loadPredictor: ${k} must be a positive integer, got ${String(v)}`);
  }
}

export { isOnnxFile };

/**
 * A predictor for an .onnx file, a convkit checkpoint, a model.safetensors or a run folder (or
 * other weights with o.model). `predictor.engine` and `predictor.choice` say what runs it.
 */
export async function loadPredictor(file: string, o: LoadPredictorOptions = {}): Promise<Predictor> {
  checkOptions(o);
  if (!o.pretrained && !fs.existsSync(file)) throw new Error(`loadPredictor: ${file}: no such file or folder`);
  return isOnnxFile(file) ? loadOnnx(file, o) : loadCheckpoint(file, o);
}

async function loadOnnx(file: string, o: LoadPredictorOptions): Promise<Predictor> {
  if (o.engine === 'libtorch') throw new Error(`loadPredictor: ${file} is an ONNX file: it runs on ONNX Runtime, not libtorch (give a checkpoint for libtorch)`);
  if (o.precision === 'bf16') throw new Error(`loadPredictor: ${file} is an ONNX file: precision bf16 is libtorch's`);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const info = predictorInfo(file, bytes);
  let backend: EngineBackend;
  try {
    backend = await onnxBackend(bytes, { engine: 'onnxruntime', precision: null, reason: 'onnx-file' }, o.threads);
  } catch (e) {
    throw new Error(`loadPredictor: ONNX Runtime cannot load ${file}: ${(e as Error).message}`, { cause: e });
  }
  return makePredictor(file, info, backend);
}

export function infoFromMetadata(m: ExportMetadata, opset: number | null): PredictorInfo {
  return {
    modelName: m.modelName ?? null, classNames: m.classNames ?? null, inputSize: m.inputSize ?? null, mean: m.mean ?? null, std: m.std ?? null,
    resize: m.resize ?? null, crop: m.crop ?? null, interpolation: m.interpolation ?? null, opset,
  };
}

type AnyModule = Module<never[], unknown>;

interface Candidate {
  key: string;
  engine: EngineName;
  precision: Precision | null;
  /** median ms per batch, once timed */
  ms?: number;
}

async function loadCheckpoint(file: string, o: LoadPredictorOptions): Promise<Predictor> {
  const src = loadExportSource(file, { model: o.model, numClasses: o.numClasses, imageSize: o.imageSize, ema: o.ema, pretrained: o.pretrained });
  const model = src.model;
  const info = infoFromMetadata(src.metadata, null);
  let session: EngineBackend | null = null;
  try {
    const engine = o.engine ?? 'auto';
    const precision = o.precision ?? 'auto';
    const lt: Precision[] = precision === 'fp32' ? [FP32] : precision === 'bf16' ? [BF16] : cpuHasBf16() ? [FP32, BF16] : [FP32];
    let note: string | undefined;
    let exportMs: number | undefined;
    // ONNX Runtime runs the float graph: a candidate unless libtorch or bf16 was asked for
    if (engine === 'onnxruntime' || (engine === 'auto' && precision !== 'bf16')) {
      try {
        // no second trace at another batch size (it costs as much as the first): the probe runs
        // the graph at another batch size than the trace's and checks it against libtorch
        const t0 = performance.now();
        const { bytes } = exportOnnx(model, src.example, { metadata: src.metadata, checkBatch: false });
        exportMs = performance.now() - t0;
        session = await onnxBackend(bytes, { engine: 'onnxruntime', precision: null, reason: 'asked' }, o.threads);
        if (engine === 'onnxruntime') await crossCheck(file, model, session, src.example, o.probeBatch ?? 8);
      } catch (e) {
        if (engine === 'onnxruntime') throw new Error(`loadPredictor: ${file} cannot run on ONNX Runtime: ${(e as Error).message}`, { cause: e });
        note = `ONNX Runtime: ${(e as Error).message}`;
      }
    }
    const candidates: Candidate[] = [
      ...(engine === 'onnxruntime' ? [] : lt.map((p) => ({ key: p.bf16 ? 'libtorch bf16' : 'libtorch fp32', engine: 'libtorch' as const, precision: p }))),
      ...(session ? [{ key: 'onnxruntime', engine: 'onnxruntime' as const, precision: null }] : []),
    ];
    let choice: EngineChoice;
    if (candidates.length === 1) {
      const c = candidates[0];
      choice = { engine: c.engine, precision: c.precision, reason: note ? 'fallback' : 'asked', ...(note ? { note } : {}) };
    } else {
      const t0 = performance.now();
      if (session) {
        try {
          await crossCheck(file, model, session, src.example, o.probeBatch ?? 8);
        } catch (e) {
          note = (e as Error).message;
          await session.dispose();
          session = null;
          candidates.pop();
        }
      }
      const timings = candidates.length > 1 ? await probe(model, session, candidates, src.example, o.probeBatch ?? 8, o.probeMs ?? 1200) : undefined;
      const probeMs = performance.now() - t0;
      choice = candidates.length > 1
        ? { ...pick(candidates), reason: 'probe', timings, probeMs: round(probeMs), ...(exportMs !== undefined ? { exportMs: round(exportMs) } : {}), ...(note ? { note } : {}) }
        : { engine: 'libtorch', precision: candidates[0].precision, reason: 'fallback', ...(note ? { note } : {}) };
    }
    src.example.dispose();
    if (choice.engine === 'onnxruntime') {
      model.dispose();
      const s = session!;
      session = null;
      return makePredictor(file, info, { ...s, choice });
    }
    await session?.dispose();
    session = null;
    return makePredictor(file, info, libtorchBackend(model, choice));
  } catch (e) {
    await session?.dispose();
    model.dispose();
    if (!src.example.isDisposed) src.example.dispose();
    throw e;
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * ONNX Runtime's logits against libtorch fp32's on a random batch of another size than the
 * export traced: a graph that kept the trace's batch size, or any export error, shows here.
 */
async function crossCheck(file: string, model: AnyModule, session: EngineBackend, example: Tensor, batch: number): Promise<void> {
  const n = batch === 2 ? 3 : batch;
  const x = randn([n, ...example.shape.slice(1)]);
  try {
    model.eval();
    layOut(model, FP32);
    const ref = libtorchLogits(model, x, FP32);
    let got: { data: Float32Array; dims: number[] };
    try {
      got = await session.logits(x);
    } catch (e) {
      throw new Error(`ONNX Runtime failed on the export of ${file} at batch ${n}: ${(e as Error).message}`, { cause: e });
    }
    const scale = ref.data.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
    const err = got.data.length === ref.data.length ? ref.data.reduce((m, v, i) => Math.max(m, Math.abs(v - got.data[i])), 0) / scale : Infinity;
    if (got.dims.join() !== ref.dims.join() || !(err < 1e-3)) {
      throw new Error(`the export of ${file} disagrees with libtorch at batch ${n} (output [${got.dims.join(', ')}] vs [${ref.dims.join(', ')}], relative error ${err.toExponential(2)})`);
    }
  } finally {
    x.dispose();
  }
}

/** The fastest candidate; bf16 only when it beats the best fp32 path by BF16_MARGIN. */
function pick(cs: Candidate[]): { engine: EngineName; precision: Precision | null } {
  const ms = (c: Candidate): number => (c.precision?.bf16 ? c.ms! * BF16_MARGIN : c.ms!);
  const best = cs.reduce((a, b) => (ms(b) < ms(a) ? b : a));
  return { engine: best.engine, precision: best.precision };
}

/**
 * Times each candidate on one random batch: one or two untimed warm-ups (oneDNN builds its
 * primitives on the first calls, at each layout), then up to 5 timed passes within its share of the budget; the
 * median, which a stray slow pass (a busy machine) does not move. Fills c.ms and returns { key: ms }.
 */
async function probe(model: AnyModule, session: EngineBackend | null, cs: Candidate[], example: Tensor, batch: number, budgetMs: number): Promise<Record<string, number>> {
  const x = randn([batch, ...example.shape.slice(1)]);
  model.eval();
  try {
    for (const c of cs) {
      const run = c.engine === 'onnxruntime' ? () => session!.logits(x) : () => { libtorchLogits(model, x, c.precision!); return Promise.resolve(); };
      if (c.engine === 'libtorch') layOut(model, c.precision!);
      const share = budgetMs / cs.length;
      const t0 = performance.now();
      await run();
      // a second warm-up only where passes are short enough for the budget to hold it
      if (performance.now() - t0 < share / 4) await run();
      const times: number[] = [];
      while (times.length < 5 && (times.length === 0 || performance.now() - t0 < share)) {
        const t = performance.now();
        await run();
        times.push(performance.now() - t);
      }
      c.ms = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    }
  } finally {
    x.dispose();
  }
  return Object.fromEntries(cs.map((c) => [c.key, Number(c.ms!.toFixed(3))]));
}
