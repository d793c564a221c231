// Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay), with AMSGrad:
// torch.optim.Adam / AdamW's update, in one native pass per parameter (F.foreach.adamStep_).
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
    const { params, grads, states } = lists;
    const [beta1, beta2] = g.betas;
    const state = {
      expAvgs: this.stateTensors(lists, 'exp_avg', 0),
      expAvgSqs: this.stateTensors(lists, 'exp_avg_sq', 0),
      maxExpAvgSqs: g.amsgrad ? this.stateTensors(lists, 'max_exp_avg_sq', 0) : [],
    };
    for (const s of states) s.step += 1;
    // per-parameter bias corrections: a parameter that skipped steps has a smaller count
    F.foreach.adamStep_(params, grads, state, {
      lr: g.lr, beta1, beta2, eps: g.eps, weightDecay: g.weightDecay, decoupled: this.decoupled, maximize: g.maximize,
      stepSizes: states.map((s) => (g.lr / (1 - beta1 ** s.step)) * -1),
      bc2Sqrts: states.map((s) => Math.sqrt(1 - beta2 ** s.step)),
    });
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
