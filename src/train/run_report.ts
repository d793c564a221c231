// Assembles report.html for a run: curves from the history, the last evaluation's confusion
// matrix and class report, and thumbnails of misclassified images read back from the dataset.
import { F, tidy, type Tensor } from '../engine/index.js';
import type { Dataset } from '../data/index.js';
import { encodePng } from '../io/images.js';
import { renderReport, type MisclassifiedImage } from './report.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { EpochRecord } from './metrics.js';
import type { EvalResult, Misclassified } from './evaluate.js';
import type { Recipe } from './recipe.js';

const THUMB = 64;

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
}

/** The raw images of the given samples as PNG data URIs (downscaled to at most 64 px). */
export async function thumbnails(dataset: Dataset, indices: number[]): Promise<string[]> {
  if (indices.length === 0) return [];
  const batch = await dataset.getBatch(indices);
  try {
    if (batch.x.size(0) !== indices.length) return [];
    const [n, c, h, w] = batch.x.shape;
    const scale = Math.min(1, THUMB / Math.max(h, w));
    const [th, tw] = [Math.max(1, Math.round(h * scale)), Math.max(1, Math.round(w * scale))];
    const bytes = tidy(() => {
      let x: Tensor = batch.x;
      if (scale < 1) x = F.interpolate(x.float(), [th, tw], { mode: 'bilinear', antialias: true }).round().clamp(0, 255).to('uint8');
      else if (x.dtype !== 'uint8') x = x.clamp(0, 255).to('uint8');
      return x.contiguous().toBytes();
    });
    const per = c * th * tw;
    // PNG holds gray or RGB: other channel counts show their first channel
    const shown = c === 3 ? 3 : 1;
    return await Promise.all(Array.from({ length: n }, async (_, i) => {
      const png = await encodePng({ data: bytes.subarray(i * per, i * per + shown * th * tw), channels: shown, height: th, width: tw });
      return `data:image/png;base64,${png.toString('base64')}`;
    }));
  } finally {
    batch.x.dispose();
    batch.y.dispose();
  }
}

export async function writeRunReport(file: string, d: RunReportInput): Promise<void> {
  const mis: Misclassified[] = d.evalResult.misclassified;
  const images = await thumbnails(d.evalSet, mis.map((m) => m.index));
  const name = (k: number): string => d.classes[k] ?? String(k);
  const misclassified: MisclassifiedImage[] = images.map((image, i) => ({
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
