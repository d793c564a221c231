// Containers: Sequential runs its children in order; ModuleList and ModuleDict only hold them.
// Children live in numbered (or named) own fields so that their names are '0', '1', ... as in PyTorch.
//
// chain() is the one way layers run in turn, in Sequential and in every model's forward: each
// intermediate result is freed as soon as the next step has consumed it, so an inference pass
// holds a few live activations rather than all of them until its tidy() ends. Autograd holds
// its own references to what backward needs, so this is safe in training too.
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { runFused, type ResidualStep } from './fuse.js';

export type Layer = Module<[Tensor], Tensor>;
/** A step of a chain: a layer (run with its hooks) or a function of one tensor. */
export type Step = Layer | ((t: Tensor) => Tensor);

/**
 * Frees t now unless it is one of `live` (a block's input, its output) or was kept (by a hook,
 * say). For a result the caller consumed and will not read again.
 */
export function release(t: Tensor, ...live: Tensor[]): void {
  if (!t.kept && !live.includes(t)) t.dispose();
}

/**
 * Runs x through the steps in turn, releasing each intermediate once the next step has run. x is
 * the caller's and is left alone. In inference a convolution with the norm, residual and
 * activation after it runs as one fused step (fuse.ts).
 */
export function chain(x: Tensor, ...steps: Step[]): Tensor {
  let out = x;
  for (let i = 0; i < steps.length;) {
    const step = steps[i];
    const fused = runFused(steps, i, out);
    const next = fused ? fused.out : step instanceof Module ? step.call(out) : step(out);
    if (out !== x) release(out, next);
    out = next;
    i += fused ? fused.consumed : 1;
  }
  return out;
}

/**
 * The step that ends a residual block: out + shortcut(x), or out + x when there is no shortcut
 * module. `out` is the branch's own fresh result, so the sum goes in place, as torchvision's
 * `out += identity` (a branch that ends in a norm layer, as torchvision's do, can be written to;
 * autograd refuses one whose backward needs its output). A branch that handed back x itself, or
 * a kept tensor, is not written to.
 */
export function addShortcut(x: Tensor, shortcut: Layer | null = null): ResidualStep {
  const step = (out: Tensor): Tensor => {
    const identity = shortcut ? shortcut.call(x) : x;
    const sum = out === x || out.kept ? out.add(identity) : out.add_(identity);
    if (identity !== x) release(identity, sum);
    return sum;
  };
  return Object.assign(step, { residual: { x, shortcut } });
}

export class Sequential extends Module {
  /** new Sequential(a, b, c) names the children '0', '1', '2'; new Sequential({ conv: a, bn: b }) names them. */
  constructor(...layers: Layer[] | [Record<string, Layer>]) {
    super();
    const first = layers[0];
    if (layers.length === 1 && !(first instanceof Module)) Object.assign(this, first);
    else (layers as Layer[]).forEach((m, i) => Object.assign(this, { [String(i)]: m }));
  }

  get length(): number {
    return this.namedChildren().length;
  }

  /** The i-th child (negative counts from the end). */
  at(i: number): Layer {
    const kids = this.children();
    const m = kids[i < 0 ? kids.length + i : i];
    if (!m) throw new RangeError(`Sequential.at(${i}): index out of range for ${kids.length} layers`);
    return m as Layer;
  }

  /** Appends a layer under the next number. */
  append(m: Layer): this {
    Object.assign(this, { [String(this.length)]: m });
    return this;
  }

  /** The children in turn, each intermediate freed once consumed (see chain). */
  forward(x: Tensor): Tensor {
    return chain(x, ...(this.children() as Layer[]));
  }
}

/** Holds modules under '0', '1', ...; forward is the owner's business. */
export class ModuleList<M extends Module<unknown[], unknown> = Module<unknown[], unknown>> extends Module<[], never> {
  constructor(modules: M[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  get length(): number {
    return this.namedChildren().length;
  }
  at(i: number): M {
    const kids = this.children();
    const m = kids[i < 0 ? kids.length + i : i];
    if (!m) throw new RangeError(`ModuleList.at(${i}): index out of range for ${kids.length} modules`);
    return m as M;
  }
  append(m: M): this {
    Object.assign(this, { [String(this.length)]: m });
    return this;
  }
  [Symbol.iterator](): Iterator<M> {
    return (this.children() as M[])[Symbol.iterator]();
  }
  forward(): never {
    throw new Error('ModuleList has no forward: iterate over it in the owning module');
  }
}

export class ModuleDict<M extends Module<unknown[], unknown> = Module<unknown[], unknown>> extends Module<[], never> {
  constructor(modules: Record<string, M> = {}) {
    super();
    Object.assign(this, modules);
  }
  get(name: string): M {
    const m = this.namedChildren().find(([k]) => k === name);
    if (!m) throw new Error(`ModuleDict has no module '${name}'`);
    return m[1] as M;
  }
  forward(): never {
    throw new Error('ModuleDict has no forward: use its modules in the owning module');
  }
}
