// SGD with momentum, dampening, Nesterov and L2 weight decay: torch.optim.SGD's update,
// in one native pass per parameter (F.foreach.sgdStep_).
import { F } from '../../engine/index.js';
import { Optimizer, checkNonNegative, type GroupOptions, type ParamGroup, type ParamsInput, type StepLists } from './optimizer.js';

export interface SGDGroup extends GroupOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  maximize: boolean;
}

export interface SGDOptions {
  /** Required, as in PyTorch. */
  lr: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty added to the gradient. */
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}

export class SGD extends Optimizer<SGDGroup> {
  override get name(): string { return 'SGD'; }
  protected get stateNames(): readonly string[] { return ['momentum_buffer']; }

  constructor(params: ParamsInput<SGDGroup>, o: SGDOptions) {
    if (typeof o?.lr !== 'number') throw new TypeError(`SGD: options.lr is required (got ${o?.lr})`);
    super(params, {
      lr: o.lr, momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, weightDecay: o.weightDecay ?? 0,
      nesterov: o.nesterov ?? false, maximize: o.maximize ?? false,
    });
  }

  protected validateGroup(g: ParamGroup<SGDGroup>, where: string): void {
    checkNonNegative(g.lr, 'lr', where);
    checkNonNegative(g.momentum, 'momentum', where);
    checkNonNegative(g.weightDecay, 'weightDecay', where);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new RangeError(`${where}: Nesterov momentum requires momentum > 0 and zero dampening`);
  }

  // A missing buffer is started from the gradient on the next step, as in PyTorch.
  protected requiredState(): string[] { return []; }

  protected updateGroup(g: ParamGroup<SGDGroup>, lists: StepLists): void {
    const { params, grads, states } = lists;
    for (const s of states) s.step += 1;
    const o = { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, maximize: g.maximize };
    if (g.momentum === 0) return F.foreach.sgdStep_(params, grads, [], { ...o, init: false });
    // a parameter's first step starts its buffer at the (decayed) gradient itself
    const fresh = states.map((s) => s.tensors.momentum_buffer === undefined);
    for (const init of [false, true]) {
      const at = fresh.flatMap((f, i) => (f === init ? [i] : []));
      if (at.length === 0) continue;
      if (init) for (const i of at) states[i].tensors.momentum_buffer = params[i].detach().clone().keep();
      F.foreach.sgdStep_(at.map((i) => params[i]), at.map((i) => grads[i]), at.map((i) => states[i].tensors.momentum_buffer), { ...o, init });
    }
  }
}
