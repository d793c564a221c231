// Assembles report.html for a run: curves from the history, the last evaluation's confusion
// matrix and class report, and thumbnails of misclassified images read back from the dataset.
import { F, tensor, tidy, type Tensor } from '../engine/index.js';
import type { BatchTransform, Dataset } from '../data/index.js';
import { encodePng } from '../io/images.js';
import { gradCam, normalizeMap, overlay, type ExplainModel } from '../explain/index.js';
import { renderReport, type MisclassifiedImage } from './report.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { EpochRecord } from './metrics.js';
import type { EvalResult, Misclassified } from './evaluate.js';
import type { Recipe } from './recipe.js';

const THUMB = 64;
/** Grad-CAM maps in the report: the first misclassified images only, so an epoch's report stays cheap */
const CAM_IMAGES = 16;
const CAM_BATCH = 8;

export interface RunReportInput {
  recipe: Recipe;
  history: EpochRecord[];
  lrTrace: [number, number][];
  classes: string[];
  evalSet: Dataset;
  evalResult: EvalResult;
  bestAcc: number;
  bestEpoch: number;
  numParams: number;
  /** the model and the evaluation transform, for Grad-CAM maps of the misclassified images (omitted: no maps) */
  explain?: { model: ExplainModel; transform?: BatchTransform };
}

/** uint8-range images [N, C, H, W] as PNG data URIs, downscaled to at most 64 px (C other than 3 shows the first channel). */
async function pngUris(images: Tensor): Promise<string[]> {
  const [n, c, h, w] = images.shape;
  const scale = Math.min(1, THUMB / Math.max(h, w));
  const [th, tw] = [Math.max(1, Math.round(h * scale)), Math.max(1, Math.round(w * scale))];
  const bytes = tidy(() => {
    let x: Tensor = images;
    if (scale < 1) x = F.interpolate(x.float(), [th, tw], { mode: 'bilinear', antialias: true }).round().clamp(0, 255).to('uint8');
    else if (x.dtype !== 'uint8') x = x.clamp(0, 255).to('uint8');
    return x.contiguous().toBytes();
  });
  const per = c * th * tw;
  // PNG holds gray or RGB: other channel counts show their first channel
  const shown = c === 3 ? 3 : 1;
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const png = await encodePng({ data: bytes.subarray(i * per, i * per + shown * th * tw), channels: shown, height: th, width: tw });
    return `data:image/png;base64,${png.toString('base64')}`;
  }));
}

/** The raw images of the given samples as PNG data URIs (downscaled to at most 64 px). */
export async function thumbnails(dataset: Dataset, indices: number[]): Promise<string[]> {
  if (indices.length === 0) return [];
  const batch = await dataset.getBatch(indices);
  try {
    if (batch.x.size(0) !== indices.length) return [];
    return await pngUris(batch.x);
  } finally {
    batch.x.dispose();
    batch.y.dispose();
  }
}

/**
 * Grad-CAM of the predicted class over each sample, blended over its raw image, as PNG data URIs.
 * The samples go through the evaluation transform, as the evaluation saw them.
 */
export async function camThumbnails(dataset: Dataset, indices: number[], predicted: number[], e: NonNullable<RunReportInput['explain']>): Promise<{ images: string[]; layer: string }> {
  const images: string[] = [];
  let layer = '';
  for (let s = 0; s < indices.length; s += CAM_BATCH) {
    const idx = indices.slice(s, s + CAM_BATCH);
    const batch = await dataset.getBatch(idx);
    try {
      const [n, c, h, w] = batch.x.shape;
      // the map is drawn over the raw image at the model's input size
      const shown = c === 3 ? 3 : 1;
      const blended = tidy(() => {
        const x = e.transform ? e.transform({ x: batch.x, y: batch.y }, false).x : batch.x.float();
        const r = gradCam(e.model, x, { classIndex: predicted.slice(s, s + CAM_BATCH) });
        layer = r.layer;
        // an evaluation transform that resized the images: the map is brought back to the raw size
        const sized = x.shape[2] === h && x.shape[3] === w ? r.maps : F.interpolate(r.maps.unsqueeze(1), [h, w], { mode: 'bilinear' }).squeeze(1);
        const maps = sized.contiguous().toTypedArray() as Float32Array;
        const raw = batch.x.narrow(1, 0, shown).clamp(0, 255).to('uint8').contiguous().toBytes();
        const out = new Uint8Array(n * 3 * h * w);
        for (let i = 0; i < n; i++) {
          const map01 = normalizeMap(maps.subarray(i * h * w, (i + 1) * h * w));
          out.set(overlay(raw.subarray(i * shown * h * w, (i + 1) * shown * h * w), shown, map01, 0.5), i * 3 * h * w);
        }
        return tensor(out, { shape: [n, 3, h, w] });
      });
      try {
        images.push(...await pngUris(blended));
      } finally {
        blended.dispose();
      }
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  }
  return { images, layer };
}

export async function writeRunReport(file: string, d: RunReportInput): Promise<void> {
  const mis: Misclassified[] = d.evalResult.misclassified;
  const images = await thumbnails(d.evalSet, mis.map((m) => m.index));
  const name = (k: number): string => d.classes[k] ?? String(k);
  const misclassified: MisclassifiedImage[] = images.map((image, i) => ({
    index: mis[i].index, label: name(mis[i].label), predicted: name(mis[i].predicted), confidence: mis[i].confidence, image,
  }));
  let cam: { images: string[]; layer: string } = { images: [], layer: '' };
  let camError: string | undefined;
  if (d.explain && mis.length > 0) {
    const some = mis.slice(0, CAM_IMAGES);
    try {
      cam = await camThumbnails(d.evalSet, some.map((m) => m.index), some.map((m) => m.predicted), d.explain);
    } catch (e) {
      // a model Grad-CAM cannot read (no spatial map) must not cost the run its report
      camError = (e as Error).message;
    }
  }
  const misclassifiedCam: MisclassifiedImage[] = cam.images.map((image, i) => ({
    index: mis[i].index, label: name(mis[i].label), predicted: name(mis[i].predicted), confidence: mis[i].confidence, image,
  }));
  const last = d.history.at(-1);
  const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(2)}%`);
  const totalSeconds = d.history.reduce((a, h) => a + h.epochSeconds, 0);
  const html = renderReport({
    title: `${d.recipe.model} on ${d.recipe.dataset}`,
    recipe: d.recipe,
    history: d.history,
    lrTrace: d.lrTrace,
    classNames: d.classes,
    confusion: d.evalResult.confusion.toJSON(),
    classReport: d.evalResult.confusion.report(d.classes),
    misclassified,
    misclassifiedCam,
    camLayer: cam.layer,
    camError,
    summary: {
      epochs: `${d.history.length} / ${d.recipe.epochs}`,
      [`${last?.evalSplit ?? 'test'} top-1 (last epoch)`]: pct(last?.valAcc),
      [`${last?.evalSplit ?? 'test'} top-5 (last epoch)`]: pct(last?.valTop5),
      'best top-1': `${pct(d.bestAcc)} (epoch ${d.bestEpoch})`,
      'EMA top-1 (last epoch)': pct(last?.emaAcc),
      parameters: d.numParams.toLocaleString('en-US'),
      'training time': `${totalSeconds.toFixed(1)} s`,
      'images/s (last epoch)': last ? last.imagesPerSec.toFixed(0) : '-',
      'peak RSS': last ? `${last.peakRssMB.toFixed(0)} MB` : '-',
    },
  });
  writeFileAtomic(file, html);
}
