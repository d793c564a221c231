// The optimizer base: parameter groups with per-group hyper-parameters, per-parameter state,
// and checkpoints split into tensors (for safetensors) and JSON meta, as torch.optim.Optimizer.
//
// Separate learning rates (e.g. a fine-tuned head and a backbone) are param groups the caller
// builds; every option not given in a group comes from the optimizer's defaults:
//   const head = new Set(model.fc.parameters());
//   new SGD([{ params: model.parameters().filter((p) => !head.has(p)), lr: 0.01 },
//            { params: [...head], lr: 0.1 }], { lr: 0.01, momentum: 0.9 });
import { F, Tensor, isTensor, noGrad, tidy, type StateDict } from '../../engine/index.js';
import type { JsonValue } from '../../io/json.js';

/** Hyper-parameters that the groups of every optimizer carry. */
export interface GroupOptions {
  lr: number;
  weightDecay: number;
}

/** What schedules add to a group (PyTorch's initial_lr, max_lr, min_lr, max_momentum, base_momentum). */
export interface ScheduleFields {
  initialLr?: number;
  maxLr?: number;
  minLr?: number;
  maxMomentum?: number;
  baseMomentum?: number;
}

/** A group as the optimizer holds it: every option filled in. Schedules write `lr` (and momentum). */
export type ParamGroup<O extends GroupOptions = GroupOptions> = O & ScheduleFields & { params: Tensor[] };
/** A group as the caller gives it: options it leaves out come from the defaults. */
export type ParamGroupInput<O> = Partial<O> & ScheduleFields & { params: Tensor[] };
/** A plain parameter list (one group) or a list of groups. */
export type ParamsInput<O> = readonly Tensor[] | readonly ParamGroupInput<O>[];

/** The JSON half of a checkpoint: group hyper-parameters with parameter indices, step counts. */
export interface OptimizerMeta {
  optimizer: string;
  paramGroups: ({ params: number[] } & { [key: string]: JsonValue })[];
  /** By parameter index (over all groups in order): the number of steps that parameter took. */
  state: { [index: string]: { step: number } };
}

/**
 * A checkpoint of an optimizer. `tensors` are keyed 'state.<index>.<name>' (e.g.
 * 'state.3.exp_avg'), the index counting parameters over all groups in order, as torch's
 * optimizer state_dict does; they can go to safetensors as they are, and `meta` to JSON.
 */
export interface OptimizerState {
  tensors: StateDict;
  meta: OptimizerMeta;
}

/** One parameter's state: its step count and named tensors (exp_avg, momentum_buffer, ...). */
export interface ParamState {
  step: number;
  tensors: Record<string, Tensor>;
}

/** The parameters of a group that have a gradient this step, with their grads and states. */
export interface StepLists {
  params: Tensor[];
  grads: Tensor[];
  states: ParamState[];
}

export abstract class Optimizer<O extends GroupOptions = GroupOptions> {
  readonly defaults: Readonly<O>;
  readonly paramGroups: ParamGroup<O>[] = [];
  protected readonly state = new Map<Tensor, ParamState>();

  /** The optimizer's name in checkpoints and errors ('SGD', 'Adam', ...); subclasses override it. */
  get name(): string { return 'Optimizer'; }

  constructor(params: ParamsInput<O>, defaults: O) {
    this.defaults = Object.freeze({ ...defaults });
    const list = [...params] as (Tensor | ParamGroupInput<O>)[];
    if (list.length === 0) throw new Error(`${this.name}: got an empty parameter list`);
    const groups = isTensor(list[0]) ? [{ params: list as Tensor[] } as ParamGroupInput<O>] : (list as ParamGroupInput<O>[]);
    groups.forEach((g) => this.addParamGroup(g));
  }

  /** Adds a group (e.g. layers unfrozen during fine-tuning); options it omits come from the defaults. */
  addParamGroup(group: ParamGroupInput<O>): void {
    const where = `${this.name} param group ${this.paramGroups.length}`;
    if (!group || !Array.isArray(group.params)) throw new TypeError(`${where}: expected {params: Tensor[], ...options}`);
    const taken = new Set(this.paramGroups.flatMap((g) => g.params));
    const mine = new Set<Tensor>();
    group.params.forEach((p, i) => {
      if (!isTensor(p)) throw new TypeError(`${where}: params[${i}] is not a Tensor`);
      if (!p.isLeaf) throw new Error(`${where}: params[${i}] is not a leaf tensor (it was computed from others); optimize leaves`);
      if (!p.dtype.startsWith('float') && p.dtype !== 'bfloat16') throw new Error(`${where}: params[${i}] has dtype ${p.dtype}; expected a floating tensor`);
      if (taken.has(p)) throw new Error(`${where}: params[${i}] is already in another param group`);
      if (mine.has(p)) throw new Error(`${where}: params[${i}] appears twice in the group`);
      mine.add(p);
    });
    // copies, so that no two groups share an options array (betas) with each other or the defaults
    const given = Object.fromEntries(Object.entries(group).filter(([k, v]) => k !== 'params' && v !== undefined));
    const full = { ...structuredClone(this.defaults), ...structuredClone(given), params: [...group.params] } as ParamGroup<O>;
    this.validateGroup(full, where);
    this.paramGroups.push(full);
  }

  /** Clears the gradients: to null (PyTorch's set_to_none=True, the default here) or to zeros. */
  zeroGrad(setToNone = true): void {
    const params = this.paramGroups.flatMap((g) => g.params);
    if (setToNone) {
      for (const p of params) p.grad = null;
      return;
    }
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length > 0) noGrad(() => F.foreach.zero_(grads));
    });
  }

  /** One update of every parameter that has a gradient; the others are skipped. */
  step(): void {
    noGrad(() => tidy(() => {
      for (const g of this.paramGroups) {
        const lists = this.gather(g);
        if (lists.params.length > 0) this.updateGroup(g, lists);
      }
    }));
  }

  /** The update of one group's parameters (run inside noGrad and tidy: keep() state tensors). */
  protected abstract updateGroup(group: ParamGroup<O>, lists: StepLists): void;
  /** Range checks of a group's hyper-parameters; throws naming `where`. */
  protected abstract validateGroup(group: ParamGroup<O>, where: string): void;
  /** The state tensors a parameter needs once it has stepped under these options (checked on load). */
  protected abstract requiredState(group: ParamGroup<O>): string[];
  /** Every state tensor name this optimizer may hold. */
  protected abstract get stateNames(): readonly string[];

  protected gather(group: ParamGroup<O>): StepLists {
    const lists: StepLists = { params: [], grads: [], states: [] };
    for (const p of group.params) {
      const g = p.grad;
      if (g === null) continue;
      let s = this.state.get(p);
      if (!s) this.state.set(p, (s = { step: 0, tensors: {} }));
      lists.params.push(p);
      lists.grads.push(g);
      lists.states.push(s);
    }
    return lists;
  }

  /** The named state tensor of each parameter, made (kept, same layout as the parameter) where missing. */
  protected stateTensors(lists: StepLists, name: string, fill: number): Tensor[] {
    return lists.states.map((s, i) => (s.tensors[name] ??= lists.params[i].clone().fill_(fill).keep()));
  }

  // ---- checkpoints ------------------------------------------------------------------------------

  /**
   * The state as tensors + JSON meta. The tensors are the optimizer's own (not copies, as in
   * PyTorch): write them out, do not dispose them.
   */
  stateDict(): OptimizerState {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => ({
      ...hyperParams(g),
      params: g.params.map((p) => {
        index.set(p, index.size);
        return index.size - 1;
      }),
    }));
    const tensors: StateDict = new Map();
    const state: OptimizerMeta['state'] = {};
    const entries = [...this.state].map(([p, s]) => [index.get(p)!, s] as const).sort((a, b) => a[0] - b[0]);
    for (const [i, s] of entries) {
      state[String(i)] = { step: s.step };
      for (const [name, t] of Object.entries(s.tensors)) tensors.set(`state.${i}.${name}`, t);
    }
    return { tensors, meta: { optimizer: this.name, paramGroups, state } };
  }

  /**
   * Restores a stateDict(): group hyper-parameters (all but the parameters themselves) and
   * per-parameter state, copied and cast to each parameter's dtype and device. Checks first
   * that it fits (optimizer, group and parameter counts, tensor names and shapes) and names
   * everything that does not; nothing changes then.
   */
  loadStateDict(s: OptimizerState): void {
    const byIndex = this.paramGroups.flatMap((g) => g.params.map((p) => ({ p, g })));
    const problems = this.checkState(s, byIndex.length);
    const parsed = problems.length === 0 ? this.matchState(s, byIndex, problems) : new Map<number, Record<string, Tensor>>();
    if (problems.length > 0) {
      throw new Error(`${this.name}.loadStateDict: the state does not fit this optimizer:\n  - ${problems.join('\n  - ')}`);
    }
    // copies first: the source may be this optimizer's own stateDict()
    const next = noGrad(() => Object.entries(s.meta.state).map(([idx, { step }]) => {
      const p = byIndex[Number(idx)].p;
      const tensors: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(parsed.get(Number(idx)) ?? {})) tensors[name] = castLike(t, p);
      return [p, { step, tensors }] as const;
    }));
    this.paramGroups.forEach((g, gi) => Object.assign(g, structuredClone(savedOptions(s.meta, gi))));
    this.clearState();
    for (const [p, st] of next) this.state.set(p, st);
  }

  // The second round of checks, once the layout fits: shapes, the saved options' ranges, and
  // the state each stepped parameter needs. Returns the tensors by parameter index.
  private matchState(s: OptimizerState, byIndex: { p: Tensor; g: ParamGroup<O> }[], problems: string[]): Map<number, Record<string, Tensor>> {
    const parsed = new Map<number, Record<string, Tensor>>();
    for (const [key, t] of s.tensors) {
      const [, idx, name] = /^state\.(\d+)\.(.+)$/.exec(key)!;
      const { p } = byIndex[Number(idx)];
      if (!sameShape(t.shape, p.shape)) problems.push(`'${key}' has shape [${t.shape.join(', ')}], parameter ${idx} has shape [${p.shape.join(', ')}]`);
      parsed.set(Number(idx), { ...parsed.get(Number(idx)), [name]: t });
    }
    const groups = this.paramGroups.map((g, gi) => ({ ...g, ...savedOptions(s.meta, gi) }) as ParamGroup<O>);
    groups.forEach((g, gi) => {
      try {
        this.validateGroup(g, `param group ${gi} of the state`);
      } catch (err) {
        problems.push((err as Error).message);
      }
    });
    for (const idx of Object.keys(s.meta.state)) {
      const group = groups[this.paramGroups.indexOf(byIndex[Number(idx)].g)];
      const missing = this.requiredState(group).filter((n) => !parsed.get(Number(idx))?.[n]);
      if (missing.length) problems.push(`parameter ${idx} has a step count but no ${missing.map((n) => `'state.${idx}.${n}'`).join(', ')}`);
    }
    return parsed;
  }

  private checkState(s: OptimizerState, numParams: number): string[] {
    const meta = s?.meta;
    if (!(s?.tensors instanceof Map) || !meta || !Array.isArray(meta.paramGroups) || typeof meta.state !== 'object' || meta.state === null) {
      return ['expected {tensors, meta: {optimizer, paramGroups, state}} as stateDict() returns it'];
    }
    const problems: string[] = [];
    if (meta.optimizer !== this.name) problems.push(`it is the state of ${meta.optimizer}, this optimizer is ${this.name}`);
    if (meta.paramGroups.length !== this.paramGroups.length) {
      problems.push(`it has ${meta.paramGroups.length} param groups, this optimizer has ${this.paramGroups.length}`);
    } else {
      meta.paramGroups.forEach((g, i) => {
        const n = Array.isArray(g.params) ? g.params.length : NaN;
        if (n !== this.paramGroups[i].params.length) problems.push(`param group ${i} has ${n} parameters in the state, ${this.paramGroups[i].params.length} here`);
      });
    }
    for (const [idx, st] of Object.entries(meta.state)) {
      if (!/^\d+$/.test(idx) || Number(idx) >= numParams) problems.push(`state of parameter '${idx}', but there are ${numParams} parameters`);
      if (!Number.isSafeInteger(st?.step) || st.step < 0) problems.push(`parameter ${idx}: step must be a non-negative integer, got ${JSON.stringify(st?.step)}`);
    }
    for (const [key, t] of s.tensors) {
      const m = /^state\.(\d+)\.(.+)$/.exec(key);
      if (!m) problems.push(`unexpected tensor '${key}' (expected 'state.<index>.<name>')`);
      else if (!isTensor(t)) problems.push(`'${key}' is not a Tensor`);
      else if (!(m[1] in meta.state)) problems.push(`'${key}' belongs to parameter ${m[1]}, which has no step count in meta.state`);
      else if (!this.stateNames.includes(m[2])) problems.push(`'${key}': ${this.name} has no state '${m[2]}' (it has ${this.stateNames.join(', ')})`);
    }
    return problems;
  }

  /** Frees the per-parameter state (momentum buffers, moments); the next step starts afresh. */
  clearState(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.state.clear();
  }

  /** Frees the optimizer's native memory (its state); the parameters are the caller's. */
  dispose(): void {
    this.clearState();
  }
}

/** A saved group's options, without its parameter indices. */
function savedOptions(meta: OptimizerMeta, gi: number): { [key: string]: JsonValue } {
  const { params: _indices, ...options } = meta.paramGroups[gi];
  return options;
}

function hyperParams(g: ParamGroup): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(g)) if (k !== 'params' && v !== undefined) out[k] = structuredClone(v) as JsonValue;
  return out;
}

// The parameter's dtype, device and layout: a checkpoint stores its tensors contiguous, and the
// update's one-pass loop wants the state laid out as the parameter is.
function castLike(t: Tensor, p: Tensor): Tensor {
  return p.detach().clone().copy_(t).keep();
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// ---- checks the optimizers share ---------------------------------------------------------------

export function checkNonNegative(value: number, what: string, where: string): void {
  if (typeof value !== 'number' || !(value >= 0)) throw new RangeError(`${where}: ${what} must be a number >= 0, got ${value}`);
}

export function checkUnit(value: number, what: string, where: string): void {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) throw new RangeError(`${where}: ${what} must be in [0, 1), got ${value}`);
}
