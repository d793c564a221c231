// Image files through a predictor, batch by batch: decoded by sharp straight to the model's crop
// (the shorter side resized as the metadata says, then the centre cut out), the next batch
// decoding while this one runs. Only one or two batches are ever held, whatever the number of files.
import { tensor, type Tensor } from '../engine/index.js';
import { decodeImageBytes, decodeImages, type DecodeOptions } from '../io/index.js';
import type { Prediction, Predictor, PredictorInfo } from './predictor.js';

export interface FilePrediction {
  path: string;
  top: Prediction[];
}

export interface PredictFilesOptions {
  /** images per batch (default 32) */
  batch?: number;
  /** classes per image (default 5) */
  top?: number;
  /** images decoded at once (default: sharp's pool, the CPU count) */
  concurrency?: number;
  /** a file that could not be read or decoded: it is skipped */
  onError?: (path: string, error: Error) => void;
}

const KERNELS: Record<string, DecodeOptions['kernel']> = { bilinear: 'linear', bicubic: 'cubic', nearest: 'nearest', lanczos: 'lanczos3' };

/** How to decode an image file for a model: straight to [C, crop] after the shorter side is resized. */
export function decodePlan(info: PredictorInfo, file: string): { decode: DecodeOptions; crop: [number, number]; channels: 1 | 3 } {
  const { crop, inputSize, mean, std } = info;
  if (!crop || !inputSize || !mean || !std) throw new Error(`${file}: the model has no image preprocessing metadata (input size, crop, mean, std)`);
  const channels = inputSize[0];
  if (channels !== 1 && channels !== 3) throw new Error(`${file}: the model takes ${channels}-channel input: only 1- or 3-channel image models take image files`);
  // 'cover' scales the image to cover the size and cuts out its centre: at the resize side scaled
  // to the crop's aspect, then the crop's centre below, that is Resize(resize) + CenterCrop(crop)
  const k = (info.resize ?? Math.min(...crop)) / Math.min(...crop);
  const size: [number, number] = [Math.max(crop[0], Math.round(crop[0] * k)), Math.max(crop[1], Math.round(crop[1] * k))];
  return { decode: { size, mode: 'cover', channels, kernel: KERNELS[info.interpolation ?? 'bilinear'] ?? 'linear' }, crop, channels };
}

function centreCut(data: Uint8Array, c: number, h: number, w: number, [ch, cw]: [number, number], out: Uint8Array, at: number): void {
  const oy = Math.round((h - ch) / 2);
  const ox = Math.round((w - cw) / 2);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < ch; y++) {
      const src = k * h * w + (y + oy) * w + ox;
      out.set(data.subarray(src, src + cw), at + k * ch * cw + y * cw);
    }
  }
}

/**
 * An encoded image (JPEG, PNG or WebP bytes, e.g. an upload) decoded as predictFiles decodes a
 * file: uint8 [C, crop] for the model. A header declaring more than maxPixels is refused before
 * decoding; errors name `name`.
 */
export async function decodeImageForModel(bytes: Buffer, info: PredictorInfo, name: string, maxPixels?: number): Promise<Uint8Array> {
  const plan = decodePlan(info, name);
  const data = await decodeImageBytes(bytes, { ...plan.decode, ...(maxPixels ? { maxPixels } : {}) }, name);
  const [h, w] = plan.decode.size;
  const [ch, cw] = plan.crop;
  if (h === ch && w === cw) return data;
  const out = new Uint8Array(plan.channels * ch * cw);
  centreCut(data, plan.channels, h, w, plan.crop, out, 0);
  return out;
}

interface Decoded {
  paths: string[];
  /** uint8 [N, C, crop...], or null when no file of the batch decoded */
  images: Tensor | null;
}

async function decodeBatch(paths: string[], plan: ReturnType<typeof decodePlan>, o: PredictFilesOptions): Promise<Decoded> {
  const results = await decodeImages(paths, { ...plan.decode, ...(o.concurrency ? { concurrency: o.concurrency } : {}) });
  const ok = results.filter((r) => r.ok);
  for (const r of results) if (!r.ok) o.onError?.(r.path, r.error);
  if (ok.length === 0) return { paths: [], images: null };
  const [h, w] = plan.decode.size;
  const [ch, cw] = plan.crop;
  const per = plan.channels * ch * cw;
  const all = new Uint8Array(ok.length * per);
  ok.forEach((r, i) => {
    if (h === ch && w === cw) all.set(r.data, i * per);
    else centreCut(r.data, plan.channels, h, w, plan.crop, all, i * per);
  });
  return { paths: ok.map((r) => r.path), images: tensor(all, { shape: [ok.length, plan.channels, ch, cw] }) };
}

/** The predictions of each file that decoded, a batch at a time, in the order of `paths`. */
export async function* predictFiles(p: Predictor, paths: Iterable<string>, o: PredictFilesOptions = {}): AsyncGenerator<FilePrediction[]> {
  const size = o.batch ?? 32;
  if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`predictFiles: batch must be a positive integer, got ${String(size)}`);
  const plan = decodePlan(p.info, 'predict');
  const it = paths[Symbol.iterator]();
  const take = (): string[] => {
    const out: string[] = [];
    while (out.length < size) {
      const r = it.next();
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  };
  const start = (): Promise<Decoded> | null => {
    const list = take();
    return list.length ? decodeBatch(list, plan, o) : null;
  };
  let pending = start();
  try {
    while (pending) {
      const d = await pending;
      pending = start();
      if (!d.images) continue;
      try {
        const preds = await p.predict(d.images, { top: o.top ?? 5 });
        yield preds.map((top, i) => ({ path: d.paths[i], top }));
      } finally {
        d.images.dispose();
      }
    }
  } finally {
    // a consumer that stops early: the batch decoding ahead is dropped
    if (pending) void pending.then((d) => d.images?.dispose(), () => undefined);
  }
}
