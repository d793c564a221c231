// RMSprop, PyTorch's (torch.optim.RMSprop, multi-tensor path) and TensorFlow's (`tfStyle`,
// as timm's RMSpropTF, which EfficientNet and MobileNet were trained with):
//   PyTorch:    square_avg starts at 0;  avg = sqrt(square_avg) + eps;  p -= lr * buf
//   TensorFlow: square_avg starts at 1;  avg = sqrt(square_avg + eps);  buf folds lr in
//               (buf = m * buf + lr * g / avg; p -= buf), and the averages update as
//               s += (1 - alpha) * (g^2 - s).
// timm's recipe for EfficientNet: new RMSprop(params, { tfStyle: true, lr, alpha: 0.9, eps: 1e-3,
// momentum: 0.9, weightDecay: 1e-5 }).
import { F, type Tensor } from '../../engine/index.js';
import { Optimizer, checkNonNegative, type GroupOptions, type ParamGroup, type ParamsInput, type StepLists } from './optimizer.js';

export interface RMSpropGroup extends GroupOptions {
  alpha: number;
  eps: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
  tfStyle: boolean;
  /** Shrink the weights by lr * weightDecay instead of adding the decay to the gradient. */
  decoupledDecay: boolean;
  /** Fold lr into the momentum buffer (TensorFlow) rather than scaling the update by it. */
  lrInMomentum: boolean;
}

export interface RMSpropOptions {
  /** default 1e-2 */
  lr?: number;
  /** smoothing constant; default 0.99, or 0.9 with tfStyle (timm's RMSpropTF) */
  alpha?: number;
  /** default 1e-8, or 1e-10 with tfStyle */
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
  maximize?: boolean;
  /** TensorFlow's RMSprop (eps inside the sqrt, mean square starting at 1, lr in the momentum). */
  tfStyle?: boolean;
  /** default false */
  decoupledDecay?: boolean;
  /** default: tfStyle */
  lrInMomentum?: boolean;
}

export class RMSprop extends Optimizer<RMSpropGroup> {
  override get name(): string { return 'RMSprop'; }
  protected get stateNames(): readonly string[] { return ['square_avg', 'momentum_buffer', 'grad_avg']; }

  constructor(params: ParamsInput<RMSpropGroup>, o: RMSpropOptions = {}) {
    const tf = o.tfStyle ?? false;
    super(params, {
      lr: o.lr ?? 1e-2, alpha: o.alpha ?? (tf ? 0.9 : 0.99), eps: o.eps ?? (tf ? 1e-10 : 1e-8),
      weightDecay: o.weightDecay ?? 0, momentum: o.momentum ?? 0, centered: o.centered ?? false,
      maximize: o.maximize ?? false, tfStyle: tf, decoupledDecay: o.decoupledDecay ?? false, lrInMomentum: o.lrInMomentum ?? tf,
    });
  }

  protected validateGroup(g: ParamGroup<RMSpropGroup>, where: string): void {
    checkNonNegative(g.lr, 'lr', where);
    checkNonNegative(g.eps, 'eps', where);
    checkNonNegative(g.momentum, 'momentum', where);
    checkNonNegative(g.weightDecay, 'weightDecay', where);
    checkNonNegative(g.alpha, 'alpha', where);
  }

  protected requiredState(g: ParamGroup<RMSpropGroup>): string[] {
    return ['square_avg', ...(g.momentum > 0 ? ['momentum_buffer'] : []), ...(g.centered ? ['grad_avg'] : [])];
  }

  protected updateGroup(g: ParamGroup<RMSpropGroup>, lists: StepLists): void {
    const { params, states } = lists;
    let grads = g.maximize ? F.foreach.neg(lists.grads) : lists.grads;
    const squareAvgs = this.stateTensors(lists, 'square_avg', g.tfStyle ? 1 : 0);
    const gradAvgs = g.centered ? this.stateTensors(lists, 'grad_avg', 0) : [];
    for (const s of states) s.step += 1;
    if (g.weightDecay !== 0) {
      if (g.decoupledDecay) F.foreach.mulScalar_(params, 1 - g.lr * g.weightDecay);
      else grads = F.foreach.add(grads, params, g.weightDecay);
    }
    const avg = g.tfStyle ? this.tfDenominator(g, grads, squareAvgs, gradAvgs) : this.torchDenominator(g, grads, squareAvgs, gradAvgs);
    if (g.momentum > 0) {
      const bufs = this.stateTensors(lists, 'momentum_buffer', 0);
      F.foreach.mulScalar_(bufs, g.momentum);
      F.foreach.addcdiv_(bufs, grads, avg, g.lrInMomentum ? g.lr : 1);
      F.foreach.add_(params, bufs, g.lrInMomentum ? -1 : -g.lr);
    } else {
      F.foreach.addcdiv_(params, grads, avg, -g.lr);
    }
  }

  // sqrt(s - mean(g)^2) + eps, with s = alpha * s + (1 - alpha) * g^2
  private torchDenominator(g: RMSpropGroup, grads: Tensor[], squareAvgs: Tensor[], gradAvgs: Tensor[]): Tensor[] {
    F.foreach.mulScalar_(squareAvgs, g.alpha);
    F.foreach.addcmul_(squareAvgs, grads, grads, 1 - g.alpha);
    let avg: Tensor[];
    if (g.centered) {
      F.foreach.mulScalar_(gradAvgs, g.alpha);
      F.foreach.add_(gradAvgs, grads, 1 - g.alpha);
      avg = F.foreach.addcmul(squareAvgs, gradAvgs, gradAvgs, -1);
      F.foreach.sqrt_(avg);
    } else {
      avg = F.foreach.sqrt(squareAvgs);
    }
    F.foreach.addScalar_(avg, g.eps);
    return avg;
  }

  // sqrt(s - mean(g)^2 + eps), with s += (1 - alpha) * (g^2 - s), TensorFlow's order of ops
  private tfDenominator(g: RMSpropGroup, grads: Tensor[], squareAvgs: Tensor[], gradAvgs: Tensor[]): Tensor[] {
    const diff = F.foreach.mul(grads, grads);
    F.foreach.sub_(diff, squareAvgs);
    F.foreach.add_(squareAvgs, diff, 1 - g.alpha);
    let avg: Tensor[];
    if (g.centered) {
      const d = F.foreach.sub(grads, gradAvgs);
      F.foreach.add_(gradAvgs, d, 1 - g.alpha);
      avg = F.foreach.addcmul(squareAvgs, gradAvgs, gradAvgs, -1);
      F.foreach.addScalar_(avg, g.eps);
    } else {
      avg = F.foreach.addScalar(squareAvgs, g.eps);
    }
    F.foreach.sqrt_(avg);
    return avg;
  }
}
