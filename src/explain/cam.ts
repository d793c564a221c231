// Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhyay et al. 2018): a class's
// evidence located in a convolutional layer's map, weighted by the gradient of the class score.
import { F, tensor, tidy, where, zerosLike, type Tensor } from '../engine/index.js';
import { chooseClasses } from './classes.js';
import { forwardWithCapture, withExplainMode, type ExplainModel } from './target.js';

export type CamMethod = 'gradcam' | 'gradcampp';

export interface CamOptions {
  method?: CamMethod;
  /** the class explained: one for every image or one per image; default the predicted class */
  classIndex?: number | readonly number[];
  /** a module path ('layer4'); default the last convolutional stage */
  layer?: string;
}

export interface CamResult {
  /** [N, H, W] at the input's size: ReLU of the weighted sum of the layer's channels, bilinearly upsampled (score units, not normalised) */
  maps: Tensor;
  /** [N, h, w] at the layer's own resolution */
  lowRes: Tensor;
  classes: number[];
  predicted: number[];
  /** [N, classes] logits of the forward pass */
  logits: Tensor;
  /** the layer the maps come from */
  layer: string;
}

/**
 * The channel weights from the activations A and gradients G ([N, K, h, w]): Grad-CAM averages
 * G over space; Grad-CAM++ weighs the positive gradients by the closed-form alpha of its paper
 * (alpha = G^2 / (2 G^2 + sum(A) G^3), zero where G is zero), as the reference implementation.
 */
export function camWeights(method: CamMethod, a: Tensor, g: Tensor): Tensor {
  if (method === 'gradcam') return g.mean([2, 3], true);
  const g2 = g.pow(2);
  const g3 = g2.mul(g);
  const denom = g2.mul(2).add(a.sum([2, 3], true).mul(g3)).add(1e-7);
  const zero = zerosLike(g);
  const alpha = where(g.ne(0), g2.div(denom), zero);
  return alpha.mul(g.relu()).sum([2, 3], true);
}

/** Grad-CAM or Grad-CAM++ maps of a batch of (normalised) images x [N, C, H, W]. */
export function gradCam(model: ExplainModel, x: Tensor, o: CamOptions = {}): CamResult {
  const method = o.method ?? 'gradcam';
  if (x.ndim !== 4) throw new RangeError(`gradCam: x must be an image batch [N, C, H, W], got shape [${x.shape.join(', ')}]`);
  const [, , H, W] = x.shape;
  return withExplainMode(model, () => tidy(() => {
    const cap = forwardWithCapture(model, x, o.layer);
    try {
      const logits = cap.logits.float();
      const { classes, predicted } = chooseClasses(logits, o.classIndex);
      const idx = tensor(classes, { dtype: 'int64' }).reshape([classes.length, 1]);
      logits.gather(1, idx).sum().backward();
      const g = cap.activation.grad;
      if (g === null) throw new Error(`gradCam: no gradient reached layer '${cap.layer}': the class score does not depend on it`);
      const a = cap.activation.detach().float();
      const lowRes = camWeights(method, a, g.float()).mul(a).sum(1).relu();
      const maps = F.interpolate(lowRes.unsqueeze(1), [H, W], { mode: 'bilinear', alignCorners: false }).squeeze(1).clamp(0);
      return { maps, lowRes, classes, predicted, logits: logits.detach(), layer: cap.layer };
    } finally {
      cap.activation.dispose();
    }
  }));
}
