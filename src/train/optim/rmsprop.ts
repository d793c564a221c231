// RMSprop, PyTorch's (torch.optim.RMSprop) and TensorFlow's (`tfStyle`,
// as timm's RMSpropTF, which EfficientNet and MobileNet were trained with):
//   PyTorch:    square_avg starts at 0;  avg = sqrt(square_avg) + eps;  p -= lr * buf
//   TensorFlow: square_avg starts at 1;  avg = sqrt(square_avg + eps);  buf folds lr in
//               (buf = m * buf + lr * g / avg; p -= buf), and the averages update as
//               s += (1 - alpha) * (g^2 - s).
// timm's recipe for EfficientNet: new RMSprop(params, { tfStyle: true, lr, alpha: 0.9, eps: 1e-3,
// momentum: 0.9, weightDecay: 1e-5 }).
import { F } from '../../engine/index.js';
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
    for (const s of lists.states) s.step += 1;
    F.foreach.rmspropStep_(lists.params, lists.grads, {
      squareAvgs: this.stateTensors(lists, 'square_avg', g.tfStyle ? 1 : 0),
      gradAvgs: g.centered ? this.stateTensors(lists, 'grad_avg', 0) : [],
      bufs: g.momentum > 0 ? this.stateTensors(lists, 'momentum_buffer', 0) : [],
    }, {
      lr: g.lr, alpha: g.alpha, eps: g.eps, weightDecay: g.weightDecay, momentum: g.momentum, decoupled: g.decoupledDecay,
      maximize: g.maximize, tfStyle: g.tfStyle, lrInMomentum: g.lrInMomentum,
    });
  }
}
