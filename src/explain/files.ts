// Explanations of image files: each image decoded and normalised as the model takes it, explained,
// and written as three files (the map blended over the image, the map alone as a gray PNG, the
// raw float32 map) plus one index.json that says what each file holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tensor, tidy } from '../engine/index.js';
import { decodeImage, encodePng, listImages } from '../io/images.js';
import { writeFileAtomic } from '../io/atomic.js';
import { explain, type ExplainMethod, type ExplainOptions, type Explanation } from './explain.js';
import { grayscale, normalizeMap, overlay } from './heatmap.js';
import { ExplainError, type ExplainModel } from './target.js';

export interface ExplainFilesOptions extends Omit<ExplainOptions, 'baseline' | 'classIndex'> {
  classIndex?: number;
  outDir: string;
  /** [height, width] the model takes; images are scaled to cover it and centre-cropped */
  size: [number, number];
  channels: 1 | 3;
  /** the model's input normalisation, per channel (or one value for all) */
  mean: readonly number[];
  std: readonly number[];
  classNames?: readonly string[];
  /** weight of the colour map in the overlay (default 0.5) */
  alpha?: number;
  /** recorded in index.json (the model, the checkpoint) */
  meta?: Record<string, unknown>;
  onImage?: (done: number, total: number, file: string) => void;
}

export interface ExplainedImage extends Omit<Explanation, 'map'> {
  input: string;
  className?: string;
  predictedName?: string;
  /** file names inside outDir */
  overlay: string;
  mapPng: string;
  raw: string;
  rawMin: number;
  rawMax: number;
}

export interface ExplainIndex {
  format: 'convkit-explain';
  version: 1;
  /** the method of the last run; each image entry names its own (runs of other methods into the same folder are kept) */
  method: ExplainMethod;
  /** the raw files: little-endian float32, row-major [height, width] */
  raw: { dtype: 'float32'; byteOrder: 'little'; layout: 'row-major [height, width]' };
  meta: Record<string, unknown>;
  images: ExplainedImage[];
}

/** The image files of the arguments: files as given, folders searched for images (sorted). */
export function collectInputs(inputs: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    if (!fs.existsSync(p)) throw new ExplainError(`input ${p}: no such file or folder`);
    if (fs.statSync(p).isDirectory()) {
      const found = listImages(p);
      if (found.length === 0) throw new ExplainError(`input folder ${p}: holds no images (.jpg .jpeg .png .webp)`);
      out.push(...found);
    } else out.push(p);
  }
  if (out.length === 0) throw new ExplainError('no input images given');
  return out;
}

/** Output stems from the inputs' names, made unique (a.png, sub/a.png -> a, a-2). */
function stems(files: readonly string[]): string[] {
  const used = new Map<string, number>();
  return files.map((f) => {
    const base = path.basename(f, path.extname(f)).replace(/[^A-Za-z0-9._-]/g, '_') || 'image';
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  });
}

function perChannel(what: string, v: readonly number[], c: number): number[] {
  if (v.length === c) return [...v];
  if (v.length === 1) return Array<number>(c).fill(v[0]);
  throw new ExplainError(`${what} has ${v.length} values, expected 1 or ${c} (one per channel)`);
}

/** Explains each image file and writes the maps and index.json into outDir. */
export async function explainImages(model: ExplainModel, inputs: readonly string[], o: ExplainFilesOptions): Promise<ExplainIndex> {
  const files = collectInputs(inputs);
  const [H, W] = o.size;
  const mean = perChannel('mean', o.mean, o.channels);
  const std = perChannel('std', o.std, o.channels);
  const method = o.method ?? 'gradcam';
  fs.mkdirSync(o.outDir, { recursive: true });
  const names = stems(files);
  const images: ExplainedImage[] = [];
  for (const [i, file] of files.entries()) {
    const pixels = await decodeImage(file, { size: [H, W], mode: 'cover', channels: o.channels });
    // the black image in the model's input space: IG's baseline and occlusion's patch
    const black = mean.map((m, c) => -m / std[c]);
    const [e] = tidy(() => {
      const x = tensor(pixels, { shape: [1, o.channels, H, W] }).float().div(255)
        .sub(tensor(mean, { dtype: 'float32' }).reshape([1, o.channels, 1, 1]))
        .div(tensor(std, { dtype: 'float32' }).reshape([1, o.channels, 1, 1]));
      const baseline = method === 'ig' ? tensor(black, { dtype: 'float32' }).reshape([1, o.channels, 1, 1]).expand([1, o.channels, H, W]).contiguous() : undefined;
      return explain(model, x, { ...o, method, baseline, fill: o.fill ?? (method === 'occlusion' ? black : undefined) });
    });
    const shown = method === 'ig' ? Float32Array.from(e.map, Math.abs) : e.map;
    const map01 = normalizeMap(shown);
    const stem = `${names[i]}.${method}`;
    const overlayFile = `${stem}.png`;
    const mapFile = `${stem}.map.png`;
    const rawFile = `${stem}.f32`;
    writeFileAtomic(path.join(o.outDir, overlayFile), await encodePng({ data: overlay(pixels, o.channels, map01, o.alpha ?? 0.5), channels: 3, height: H, width: W }));
    writeFileAtomic(path.join(o.outDir, mapFile), await encodePng({ data: grayscale(map01), channels: 1, height: H, width: W }));
    writeFileAtomic(path.join(o.outDir, rawFile), new Uint8Array(e.map.buffer, e.map.byteOffset, e.map.byteLength));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of e.map) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const { map: _map, ...rest } = e;
    images.push({
      input: path.resolve(file), ...rest,
      ...(o.classNames ? { className: o.classNames[e.classIndex], predictedName: o.classNames[e.predicted] } : {}),
      overlay: overlayFile, mapPng: mapFile, raw: rawFile, rawMin: lo, rawMax: hi,
    });
    o.onImage?.(i + 1, files.length, file);
  }
  const index: ExplainIndex = {
    format: 'convkit-explain', version: 1, method, raw: { dtype: 'float32', byteOrder: 'little', layout: 'row-major [height, width]' },
    meta: { ...(o.meta ?? {}), size: [H, W], channels: o.channels, mean, std }, images,
  };
  const file = path.join(o.outDir, 'index.json');
  // another method's maps of the same model in this folder keep their entries (their files stay too)
  const kept = earlierEntries(file, index);
  writeFileAtomic(file, `${JSON.stringify({ ...index, images: [...kept, ...images] }, null, 2)}\n`);
  return index;
}

/** The entries of an index.json already in the folder that another method wrote for the same model and input. */
function earlierEntries(file: string, now: ExplainIndex): ExplainedImage[] {
  if (!fs.existsSync(file)) return [];
  try {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ExplainIndex>;
    if (old.format !== 'convkit-explain' || !Array.isArray(old.images) || JSON.stringify(old.meta) !== JSON.stringify(now.meta)) return [];
    return old.images.filter((e) => e.method !== now.method);
  } catch {
    return [];
  }
}
