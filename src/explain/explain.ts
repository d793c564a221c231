// One entry point over the four methods: a batch of images in, one map per image out, as plain
// arrays (the map at the input's size, and what each method knows about its class and score).
import { tidy, type Tensor } from '../engine/index.js';
import { gradCam } from './cam.js';
import { integratedGradients } from './integrated_gradients.js';
import { occlusion } from './occlusion.js';
import { ExplainError, type ExplainModel } from './target.js';

export const EXPLAIN_METHODS = ['gradcam', 'gradcampp', 'ig', 'occlusion'] as const;
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

export interface ExplainOptions {
  method?: ExplainMethod;
  /** one class for every image, or one per image; default each image's predicted class */
  classIndex?: number | readonly number[];
  /** Grad-CAM / Grad-CAM++: the module path of the layer; default the last convolutional stage */
  layer?: string;
  /** Integrated Gradients: trapezoid intervals (default 64) */
  steps?: number;
  /** Integrated Gradients: the baseline in the model's input space, [1 or N, C, H, W]; default zeros */
  baseline?: Tensor;
  /** occlusion: patch side and stride in pixels */
  window?: number;
  stride?: number;
  /** occlusion: the patch's value per channel in the model's input space (default 0) */
  fill?: readonly number[];
  /** images per forward pass inside IG and occlusion */
  batchSize?: number;
}

export interface Explanation {
  method: ExplainMethod;
  classIndex: number;
  predicted: number;
  /** the explained class's logit and softmax probability */
  score: number;
  probability: number;
  height: number;
  width: number;
  /**
   * [H, W] row-major, not normalised: Grad-CAM(++) the ReLU'd weighted sum upsampled; IG the
   * attributions summed over channels (they add up to the score's change from the baseline);
   * occlusion the mean drop of the class's probability
   */
  map: Float32Array;
  /** Grad-CAM(++): the layer and its map's size */
  layer?: string;
  featureSize?: [number, number];
  /** IG: |sum of attributions - score change| / |score change| */
  completenessError?: number;
  baselineScore?: number;
  /** occlusion: the patch used */
  window?: number;
  stride?: number;
}

function checkMethod(m: string): ExplainMethod {
  if (!(EXPLAIN_METHODS as readonly string[]).includes(m)) throw new ExplainError(`unknown method '${m}': expected one of ${EXPLAIN_METHODS.join(', ')}`);
  return m as ExplainMethod;
}

function scoreOf(logits: Tensor, row: number, k: number): { score: number; probability: number } {
  return tidy(() => {
    const l = logits.narrow(0, row, 1).float();
    return { score: l.select(1, k).item(), probability: l.softmax(1).select(1, k).item() };
  });
}

/** Explains each image of the batch x [N, C, H, W] (normalised as the model takes it). */
export function explain(model: ExplainModel, x: Tensor, o: ExplainOptions = {}): Explanation[] {
  const method = checkMethod(o.method ?? 'gradcam');
  if (x.ndim !== 4) throw new ExplainError(`explain: the input must be an image batch [N, C, H, W], got shape [${x.shape.join(', ')}]`);
  const [n, , H, W] = x.shape;
  if (o.layer !== undefined && method !== 'gradcam' && method !== 'gradcampp') throw new ExplainError(`explain: a layer applies to gradcam and gradcampp, not ${method}`);
  if (method === 'gradcam' || method === 'gradcampp') {
    const r = gradCam(model, x, { method, classIndex: o.classIndex, layer: o.layer });
    try {
      const maps = r.maps.contiguous().toTypedArray() as Float32Array;
      const [h, w] = r.lowRes.shape.slice(1);
      return r.classes.map((k, i) => ({
        method, classIndex: k, predicted: r.predicted[i], ...scoreOf(r.logits, i, k), height: H, width: W,
        map: maps.slice(i * H * W, (i + 1) * H * W), layer: r.layer, featureSize: [h, w] as [number, number],
      }));
    } finally {
      for (const t of [r.maps, r.lowRes, r.logits]) t.dispose();
    }
  }
  const classOf = (i: number): number | undefined => (o.classIndex === undefined || typeof o.classIndex === 'number' ? o.classIndex : o.classIndex[i]);
  if (Array.isArray(o.classIndex) && o.classIndex.length !== n) throw new ExplainError(`explain: ${o.classIndex.length} class indices given for ${n} images`);
  return Array.from({ length: n }, (_, i) => tidy(() => {
    const xi = x.narrow(0, i, 1);
    if (method === 'ig') {
      const baseline = o.baseline ? (o.baseline.shape[0] === 1 ? o.baseline : o.baseline.narrow(0, i, 1)) : undefined;
      const r = integratedGradients(model, xi, { classIndex: classOf(i), steps: o.steps, baseline, batchSize: o.batchSize });
      return {
        method, classIndex: r.classIndex, predicted: r.predicted, ...scoreOf(r.logits, 0, r.classIndex), height: H, width: W,
        map: r.attributions.sum(0).contiguous().toTypedArray() as Float32Array, completenessError: r.completenessError, baselineScore: r.baselineScore,
      };
    }
    const r = occlusion(model, xi, { classIndex: classOf(i), window: o.window, stride: o.stride, fill: o.fill, batchSize: o.batchSize });
    return {
      method, classIndex: r.classIndex, predicted: r.predicted, ...scoreOf(r.logits, 0, r.classIndex), height: H, width: W,
      map: r.map.contiguous().toTypedArray() as Float32Array, window: r.window, stride: r.stride,
    };
  }));
}
