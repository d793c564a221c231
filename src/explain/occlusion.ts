// Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch of the baseline over the image and
// record how much the class's probability drops; no gradients, so it also checks the
// gradient-based maps against what the model actually does with the pixels.
import { cat, noGrad, ones, tensor, tidy, type Tensor } from '../engine/index.js';
import { chooseClasses } from './classes.js';
import { logitsOf, withExplainMode, type ExplainModel } from './target.js';

export interface OcclusionOptions {
  classIndex?: number;
  /** the patch's side in pixels; default about an eighth of the shorter side (at least 1) */
  window?: number;
  /** the step between patches; default half the window (at least 1) */
  stride?: number;
  /** what fills the patch, per channel, in the model's (normalised) input space; default 0 */
  fill?: readonly number[];
  /** occluded images per forward pass (default 32) */
  batchSize?: number;
}

export interface OcclusionResult {
  /** [H, W]: the mean drop in the class's probability over the patches covering each pixel */
  map: Tensor;
  classIndex: number;
  predicted: number;
  /** the class's probability on the whole image */
  probability: number;
  window: number;
  stride: number;
  logits: Tensor;
}

/** Patch origins along one axis: every stride, plus one flush with the end so the last pixels are covered. */
export function windowStarts(size: number, window: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + window <= size; s += stride) out.push(s);
  if (out.length === 0 || out[out.length - 1] + window < size) out.push(Math.max(0, size - window));
  return out;
}

/** Occlusion sensitivity of one image x [1, C, H, W]. */
export function occlusion(model: ExplainModel, x: Tensor, o: OcclusionOptions = {}): OcclusionResult {
  if (x.ndim !== 4 || x.shape[0] !== 1) throw new RangeError(`occlusion: x must be one image [1, C, H, W], got shape [${x.shape.join(', ')}]`);
  const [, C, H, W] = x.shape;
  const window = o.window ?? Math.max(1, Math.round(Math.min(H, W) / 8));
  const stride = o.stride ?? Math.max(1, Math.floor(window / 2));
  const batch = o.batchSize ?? 32;
  if (!(Number.isInteger(window) && window >= 1 && window <= Math.min(H, W))) throw new RangeError(`occlusion: window must be an integer in 1..${Math.min(H, W)} (the image's shorter side), got ${window}`);
  if (!(Number.isInteger(stride) && stride >= 1)) throw new RangeError(`occlusion: stride must be a positive integer, got ${stride}`);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`occlusion: batchSize must be a positive integer, got ${batch}`);
  const fill = o.fill ?? [0];
  if (fill.length !== 1 && fill.length !== C) throw new RangeError(`occlusion: fill has ${fill.length} values, expected 1 or ${C} (one per channel)`);
  return withExplainMode(model, () => noGrad(() => tidy(() => {
    const input = x.float();
    const logits = logitsOf(model.call(input)).float();
    const { classes, predicted } = chooseClasses(logits, o.classIndex);
    const k = classes[0];
    const p0 = logits.softmax(1).select(1, k).item();
    const boxes = windowStarts(H, window, stride).flatMap((y) => windowStarts(W, window, stride).map((xx) => [y, xx] as const));
    const drop = new Float64Array(H * W);
    const count = new Float64Array(H * W);
    const patch = tidy(() => {
      const v = fill.length === 1 ? Array<number>(C).fill(fill[0]) : [...fill];
      return cat(v.map((f) => ones([1, 1, window, window]).mul(f)), 1);
    });
    for (let b = 0; b < boxes.length; b += batch) {
      const part = boxes.slice(b, b + batch);
      const probs = tidy(() => {
        const xs = input.expand([part.length, C, H, W]).clone();
        part.forEach(([y, xx], i) => { xs.narrow(0, i, 1).narrow(2, y, window).narrow(3, xx, window).copy_(patch); });
        return logitsOf(model.call(xs)).float().softmax(1).select(1, k).toArray() as number[];
      });
      part.forEach(([y, xx], i) => {
        const d = p0 - probs[i];
        for (let r = y; r < y + window; r++) for (let c = xx; c < xx + window; c++) { drop[r * W + c] += d; count[r * W + c] += 1; }
      });
    }
    const out = new Float32Array(H * W);
    for (let i = 0; i < out.length; i++) out[i] = count[i] > 0 ? drop[i] / count[i] : 0;
    const map = tensor(out, { shape: [H, W] });
    return { map, classIndex: k, predicted: predicted[0], probability: p0, window, stride, logits };
  })));
}
