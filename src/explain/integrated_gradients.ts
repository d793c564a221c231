// Integrated Gradients (Sundararajan et al. 2017): the path integral of the gradient of the class
// score from a baseline to the input, times (input - baseline). Its attributions add up to the
// score's change along the path (completeness), which the result reports as a check of the
// number of steps.
import { tensor, tidy, type Tensor } from '../engine/index.js';
import { chooseClasses } from './classes.js';
import { logitsOf, withExplainMode, type ExplainModel } from './target.js';

export interface IntegratedGradientsOptions {
  /** default the predicted class */
  classIndex?: number;
  /** the path's starting point, shaped as x; default all zeros (pass the normalised black image for a black baseline) */
  baseline?: Tensor;
  /** intervals of the trapezoidal rule (default 64) */
  steps?: number;
  /** images on the path per forward pass (default 16) */
  batchSize?: number;
}

export interface IntegratedGradientsResult {
  /** [C, H, W] attributions of one image */
  attributions: Tensor;
  classIndex: number;
  predicted: number;
  /** the class's logit at the input and at the baseline */
  score: number;
  baselineScore: number;
  /** sum of the attributions; equals score - baselineScore as the steps grow */
  attributionSum: number;
  /** |attributionSum - (score - baselineScore)| / |score - baselineScore| */
  completenessError: number;
  /** [1, classes] logits at the input */
  logits: Tensor;
}

/** Integrated Gradients of one image x [1, C, H, W] (normalised, as the model takes it). */
export function integratedGradients(model: ExplainModel, x: Tensor, o: IntegratedGradientsOptions = {}): IntegratedGradientsResult {
  const steps = o.steps ?? 64;
  const batch = o.batchSize ?? 16;
  if (x.ndim !== 4 || x.shape[0] !== 1) throw new RangeError(`integratedGradients: x must be one image [1, C, H, W], got shape [${x.shape.join(', ')}]`);
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= 4096)) throw new RangeError(`integratedGradients: steps must be an integer in 1..4096, got ${steps}`);
  if (!(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`integratedGradients: batchSize must be a positive integer, got ${batch}`);
  if (o.baseline && o.baseline.shape.join() !== x.shape.join()) {
    throw new RangeError(`integratedGradients: baseline has shape [${o.baseline.shape.join(', ')}], expected the input's [${x.shape.join(', ')}]`);
  }
  return withExplainMode(model, () => tidy(() => {
    const input = x.detach().float();
    const base = o.baseline ? o.baseline.detach().float() : input.mul(0);
    const delta = input.sub(base);
    // trapezoidal weights over alpha = k / steps, k = 0..steps
    const alphas = Array.from({ length: steps + 1 }, (_, k) => k / steps);
    const weights = alphas.map((_, k) => (k === 0 || k === steps ? 0.5 : 1) / steps);
    const logits = logitsOf(model.call(input)).float().detach();
    const chosen = chooseClasses(logits, o.classIndex);
    const classIndex = chosen.classes[0];
    const predicted = chosen.predicted[0];
    let gradSum: Tensor | null = null;
    let score = NaN;
    let baselineScore = NaN;
    for (let s = 0; s <= steps; s += batch) {
      const part = alphas.slice(s, s + batch);
      const step = tidy(() => {
        const a = tensor(part, { dtype: 'float32' }).reshape([part.length, 1, 1, 1]);
        const path = base.add(delta.mul(a)).detach().requiresGrad_(true);
        const scores = logitsOf(model.call(path)).float().select(1, classIndex);
        scores.sum().backward();
        const w = tensor(part.map((_, i) => weights[s + i]), { dtype: 'float32' }).reshape([part.length, 1, 1, 1]);
        const g = path.grad;
        if (g === null) throw new Error('integratedGradients: the class score does not depend on the input');
        return { g: g.mul(w).sum(0, true), scores: scores.detach().toArray() as number[] };
      });
      if (s === 0) baselineScore = step.scores[0];
      if (s + part.length - 1 === steps) score = step.scores[part.length - 1];
      gradSum = gradSum === null ? step.g : gradSum.add(step.g);
    }
    const attributions = delta.mul(gradSum!).squeeze(0);
    const attributionSum = attributions.sum().item();
    const diff = score - baselineScore;
    return {
      attributions, classIndex, predicted, score, baselineScore, attributionSum,
      completenessError: Math.abs(attributionSum - diff) / Math.max(Math.abs(diff), 1e-12), logits,
    };
  }));
}
