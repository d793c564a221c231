// Parameter groups for weight decay, as timm's param_groups_weight_decay: norm weights and all
// biases (any parameter with ndim <= 1) are not decayed.
//
// For other splits (a head with a higher lr than the backbone), build the groups yourself:
//   const head = new Set(model.fc.parameters());
//   const body = model.parameters().filter((p) => !head.has(p));
//   new AdamW([{ params: body, lr: 1e-4 }, { params: [...head], lr: 1e-3 }], { weightDecay: 0.05 });
import type { Module, Parameter } from '../nn/index.js';

export interface DecayGroupsOptions {
  /** Parameter names (as namedParameters() gives them) never decayed, e.g. 'cls_token'. */
  skipList?: Iterable<string>;
}

export interface DecayGroup {
  params: Parameter[];
  weightDecay: number;
}

/**
 * Two groups, [no decay, decay] (timm's order): parameters with ndim <= 1, names ending in
 * '.bias' and names in skipList get weightDecay 0. Frozen parameters (requiresGrad false) are left out.
 */
export function paramGroupsWithDecay(model: Module<unknown[], unknown>, weightDecay = 1e-5, o: DecayGroupsOptions = {}): [DecayGroup, DecayGroup] {
  const skip = new Set(o.skipList ?? []);
  const noDecay: Parameter[] = [];
  const decay: Parameter[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    if (p.ndim <= 1 || name.endsWith('.bias') || skip.has(name)) noDecay.push(p);
    else decay.push(p);
  }
  return [{ params: noDecay, weightDecay: 0 }, { params: decay, weightDecay }];
}
