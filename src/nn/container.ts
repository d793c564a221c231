// Containers: Sequential runs its children in order; ModuleList and ModuleDict only hold them.
// Children live in numbered (or named) own fields so that their names are '0', '1', ... as in PyTorch.
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';

type Layer = Module<[Tensor], Tensor>;

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

  forward(x: Tensor): Tensor {
    let out = x;
    for (const [, m] of this.namedChildren()) out = (m as Layer).call(out);
    return out;
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
