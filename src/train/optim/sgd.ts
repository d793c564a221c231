// SGD with momentum, dampening, Nesterov and L2 weight decay: torch.optim.SGD's update,
// done as its multi-tensor (foreach) path does, one native call per parameter list.
import { F, type Tensor } from '../../engine/index.js';
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
    const { params, states } = lists;
    let grads = g.maximize ? F.foreach.neg(lists.grads) : lists.grads;
    if (g.weightDecay !== 0) grads = F.foreach.add(grads, params, g.weightDecay);
    for (const s of states) s.step += 1;
    if (g.momentum !== 0) {
      const old = states.map((s, i) => [s.tensors.momentum_buffer, grads[i]] as const).filter(([b]) => b !== undefined) as [Tensor, Tensor][];
      if (old.length > 0) {
        const bufs = old.map(([b]) => b);
        F.foreach.mulScalar_(bufs, g.momentum);
        F.foreach.add_(bufs, old.map(([, d]) => d), 1 - g.dampening);
      }
      // a parameter's first step starts its buffer at the (decayed) gradient itself
      states.forEach((s, i) => { s.tensors.momentum_buffer ??= grads[i].clone().keep(); });
      const bufs = states.map((s) => s.tensors.momentum_buffer);
      grads = g.nesterov ? F.foreach.add(grads, bufs, g.momentum) : bufs;
    }
    F.foreach.add_(params, grads, -g.lr);
  }
}
