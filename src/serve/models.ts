// What `convkit serve` serves: each model given on the command line turned into ONNX bytes and
// the description a predictor reads from them. An .onnx file is read as it is; a checkpoint (or a
// registered name with its published weights) is exported in memory, as loadPredictor does for
// ONNX Runtime, because every model runs on ONNX Runtime in worker threads (see pool.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportOnnx } from '../export/export.js';
import { loadExportSource } from '../export/source.js';
import { isOnnxFile } from '../io/files.js';
import { predictorInfo, type PredictorInfo } from '../deploy/predictor.js';

export interface ModelSource {
  /** the name in URLs (default: the file's stem, a run folder's name, or the registered name) */
  name?: string;
  /** an .onnx file, a checkpoint (training checkpoint, model.safetensors, run folder), or with pretrained a registered model name */
  source: string;
  /** torchvision's ImageNet weights for a registered model name (downloaded once into the cache) */
  pretrained?: boolean;
  /** checkpoints: the registered model, for weights files convkit did not write */
  model?: string;
  numClasses?: number;
  ema?: boolean;
}

export interface ModelBytes {
  name: string;
  source: string;
  bytes: Uint8Array;
  info: PredictorInfo;
}

/** Names in URLs: a letter or digit first, then letters, digits, '_', '-', '.'; at most 64. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The default name of a source: a run folder's or a file's stem; model/best/last files take their folder's name. */
export function defaultModelName(source: string): string {
  const clean = source.replace(/[\\/]+$/, '');
  if (fs.existsSync(clean) && fs.statSync(clean).isDirectory()) return path.basename(path.resolve(clean));
  const stem = path.basename(clean).replace(/\.(onnx|safetensors|pth|pt|bin)$/i, '');
  return ['model', 'best', 'last'].includes(stem) ? path.basename(path.dirname(path.resolve(clean))) : stem;
}

/** The ONNX bytes and description of one model source. */
export async function loadModelBytes(s: ModelSource): Promise<ModelBytes> {
  const name = s.name ?? defaultModelName(s.source);
  if (!MODEL_NAME.test(name)) {
    throw new Error(`${s.source}: '${name.slice(0, 80)}' is not a usable model name (letters, digits, _ - . up to 64, a letter or digit first): name it with name=${s.source}`);
  }
  if (s.pretrained) return { name, source: s.source, ...(await exportPretrained(s)) };
  if (!fs.existsSync(s.source)) throw new Error(`${s.source}: no such file or folder (a registered model name needs --pretrained)`);
  if (isOnnxFile(s.source)) {
    const bytes = new Uint8Array(fs.readFileSync(s.source));
    return { name, source: s.source, bytes, info: predictorInfo(s.source, bytes) };
  }
  const src = loadExportSource(s.source, { model: s.model, numClasses: s.numClasses, ema: s.ema });
  try {
    const { bytes } = exportOnnx(src.model, src.example, { metadata: src.metadata });
    return { name, source: s.source, bytes, info: predictorInfo(s.source, bytes) };
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
}

async function exportPretrained(s: ModelSource): Promise<{ bytes: Uint8Array; info: PredictorInfo }> {
  const { fetchPretrained } = await import('../models/index.js');
  await fetchPretrained(s.source);
  const src = loadExportSource(s.source, { pretrained: true, numClasses: s.numClasses });
  try {
    const { bytes } = exportOnnx(src.model, src.example, { metadata: src.metadata });
    return { bytes, info: predictorInfo(s.source, bytes) };
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
}
