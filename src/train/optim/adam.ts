// Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay), with AMSGrad:
// torch.optim.Adam / AdamW's update as their multi-tensor (foreach) path does it.
import { F } from '../../engine/index.js';
import { Optimizer, checkNonNegative, checkUnit, type GroupOptions, type ParamGroup, type ParamsInput, type StepLists } from './optimizer.js';

export interface AdamGroup extends GroupOptions {
  betas: [number, number];
  eps: number;
  amsgrad: boolean;
  maximize: boolean;
}

export interface AdamOptions {
  /** default 1e-3 */
  lr?: number;
  /** default [0.9, 0.999] */
  betas?: [number, number];
  /** default 1e-8 */
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 1e-2). */
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

export class Adam extends Optimizer<AdamGroup> {
  override get name(): string { return 'Adam'; }
  protected get stateNames(): readonly string[] { return ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']; }
  /** AdamW shrinks the weights directly instead of adding the decay to the gradient. */
  protected get decoupled(): boolean { return false; }

  constructor(params: ParamsInput<AdamGroup>, o: AdamOptions = {}) {
    super(params, {
      lr: o.lr ?? 1e-3, betas: [...(o.betas ?? [0.9, 0.999])] as [number, number], eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? 0, amsgrad: o.amsgrad ?? false, maximize: o.maximize ?? false,
    });
  }

  protected validateGroup(g: ParamGroup<AdamGroup>, where: string): void {
    checkNonNegative(g.lr, 'lr', where);
    checkNonNegative(g.eps, 'eps', where);
    checkNonNegative(g.weightDecay, 'weightDecay', where);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new TypeError(`${where}: betas must be [beta1, beta2], got ${JSON.stringify(g.betas)}`);
    checkUnit(g.betas[0], 'betas[0]', where);
    checkUnit(g.betas[1], 'betas[1]', where);
  }

  protected requiredState(g: ParamGroup<AdamGroup>): string[] {
    return g.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  protected updateGroup(g: ParamGroup<AdamGroup>, lists: StepLists): void {
    const { params, states } = lists;
    const [beta1, beta2] = g.betas;
    let grads = g.maximize ? F.foreach.neg(lists.grads) : lists.grads;
    const expAvgs = this.stateTensors(lists, 'exp_avg', 0);
    const expAvgSqs = this.stateTensors(lists, 'exp_avg_sq', 0);
    for (const s of states) s.step += 1;
    if (g.weightDecay !== 0) {
      if (this.decoupled) F.foreach.mulScalar_(params, 1 - g.lr * g.weightDecay);
      else grads = F.foreach.add(grads, params, g.weightDecay);
    }
    F.foreach.mulScalar_(expAvgs, beta1);
    F.foreach.add_(expAvgs, grads, 1 - beta1);
    F.foreach.mulScalar_(expAvgSqs, beta2);
    F.foreach.addcmul_(expAvgSqs, grads, grads, 1 - beta2);
    // per-parameter bias corrections: a parameter that skipped steps has a smaller count
    const stepSize = states.map((s) => (g.lr / (1 - beta1 ** s.step)) * -1);
    const bc2Sqrt = states.map((s) => Math.sqrt(1 - beta2 ** s.step));
    let second = expAvgSqs;
    if (g.amsgrad) {
      second = this.stateTensors(lists, 'max_exp_avg_sq', 0);
      F.foreach.maximum_(second, expAvgSqs);
    }
    const denom = F.foreach.sqrt(second);
    F.foreach.divScalarList_(denom, bc2Sqrt);
    F.foreach.addScalar_(denom, g.eps);
    F.foreach.addcdivScalarList_(params, expAvgs, denom, stepSize);
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weightDecay each step. */
export class AdamW extends Adam {
  override get name(): string { return 'AdamW'; }
  protected override get decoupled(): boolean { return true; }

  constructor(params: ParamsInput<AdamGroup>, o: AdamOptions = {}) {
    super(params, { ...o, weightDecay: o.weightDecay ?? 1e-2 });
  }
}
