// Module and Parameter: the building blocks, with PyTorch's dotted names for parameters and
// buffers, so a torchvision state dict loads by name.
//
// Children and parameters are found from a module's own fields, in the order they were
// assigned (as nn.Module's __setattr__ registers them), so `conv1 = new Conv2d(...)` is
// named `conv1`. Buffers (running statistics) are registered explicitly.
import { Tensor, noGrad, type DType, type MemoryFormat, type StateDict } from '../engine/index.js';
// internal to the engine (not in its index): a Parameter adopts a tensor's data
import { detachedHandle } from '../engine/tensor.js';

/** A tensor that is a module's learnable weight: requires grad and survives tidy() scopes. */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    super(detachedHandle(data));
    this.keep();
    if (requiresGrad) this.requiresGrad = true;
  }
}

export interface LoadResult {
  missing: string[];
  unexpected: string[];
  mismatched: { key: string; expected: number[]; found: number[] }[];
}

export interface LoadOptions {
  /** Refuse any missing, unexpected or mismatched key (default true). */
  strict?: boolean;
}

export type ForwardHook = (module: Module<unknown[], unknown>, inputs: unknown[], output: unknown) => void;
/**
 * A hook whose result, when not undefined, replaces the module's output for the rest of the
 * forward pass (PyTorch's forward hooks may return a new output): how explain/ cuts the graph at
 * a layer to read the gradient there. A separate kind, so that a plain hook's stray return value
 * never changes a model's output.
 */
export type ForwardReplaceHook = (module: Module<unknown[], unknown>, inputs: unknown[], output: unknown) => unknown;

export abstract class Module<In extends unknown[] = [Tensor], Out = Tensor> {
  training = true;
  readonly #buffers = new Map<string, { tensor: Tensor | null; persistent: boolean }>();
  readonly #hooks = new Map<ForwardHook | ForwardReplaceHook, boolean>();

  abstract forward(...inputs: In): Out;

  /** Runs forward and then any forward hooks (summary and profiling use these). */
  call(...inputs: In): Out {
    let out = this.forward(...inputs);
    for (const [hook, replaces] of this.#hooks) {
      const r = hook(this as Module<unknown[], unknown>, inputs, out);
      if (replaces && r !== undefined) out = r as Out;
    }
    return out;
  }

  /** Whether forward hooks watch this module (a fused path that skips its call must not then). */
  get hasForwardHooks(): boolean {
    return this.#hooks.size > 0;
  }

  registerForwardHook(hook: ForwardHook): () => void {
    this.#hooks.set(hook, false);
    return () => this.#hooks.delete(hook);
  }

  /** A forward hook that may return a replacement for the module's output (see ForwardReplaceHook). */
  registerForwardReplaceHook(hook: ForwardReplaceHook): () => void {
    this.#hooks.set(hook, true);
    return () => this.#hooks.delete(hook);
  }

  /** The name of the module's type, as PyTorch prints it. */
  get typeName(): string {
    return this.constructor.name;
  }

  // ---- registration -------------------------------------------------------------------------

  registerBuffer(name: string, tensor: Tensor | null, persistent = true): Tensor | null {
    tensor?.keep();
    this.#buffers.set(name, { tensor, persistent });
    return tensor;
  }

  /** A registered buffer; throws if there is none by that name. */
  buffer(name: string): Tensor | null {
    const b = this.#buffers.get(name);
    if (!b) throw new Error(`${this.typeName} has no buffer '${name}'`);
    return b.tensor;
  }

  namedChildren(): [string, Module<unknown[], unknown>][] {
    const out: [string, Module<unknown[], unknown>][] = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) out.push([k, v]);
    return out;
  }

  children(): Module<unknown[], unknown>[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and every descendant, with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module<unknown[], unknown>][] {
    const out: [string, Module<unknown[], unknown>][] = [[prefix, this as Module<unknown[], unknown>]];
    for (const [k, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k));
    return out;
  }

  modules(): Module<unknown[], unknown>[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** This module's own parameters (not its children's). */
  ownParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Parameter) out.push([k, v]);
    return out;
  }

  ownBuffers(persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, b] of this.#buffers) if (b.tensor && (b.persistent || !persistentOnly)) out.push([k, b.tensor]);
    return out;
  }

  /** Every parameter under its dotted name; a parameter shared by two modules appears once. */
  namedParameters(): [string, Parameter][] {
    const seen = new Set<Parameter>();
    const out: [string, Parameter][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [k, p] of m.ownParameters()) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${k}` : k, p]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [k, b] of m.ownBuffers(persistentOnly)) out.push([prefix ? `${prefix}.${k}` : k, b]);
    }
    return out;
  }

  numParameters(trainableOnly = false): number {
    return this.parameters().reduce((n, p) => (trainableOnly && !p.requiresGrad ? n : n + p.numel()), 0);
  }

  // ---- state ----------------------------------------------------------------------------------

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's order (each module's own
   * parameters, then its buffers, then its children). The tensors are the module's own, not copies.
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    const visit = (m: Module<unknown[], unknown>, prefix: string): void => {
      for (const [k, p] of m.ownParameters()) out.set(prefix + k, p);
      for (const [k, b] of m.ownBuffers(true)) out.set(prefix + k, b);
      for (const [k, c] of m.namedChildren()) visit(c, `${prefix}${k}.`);
    };
    visit(this as Module<unknown[], unknown>, '');
    return out;
  }

  /** What loading `source` would find: missing, unexpected and shape-mismatched keys. Copies nothing. */
  compareStateDict(src: StateDict): LoadResult {
    const own = this.stateDict();
    const result: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    for (const key of own.keys()) if (!src.has(key)) result.missing.push(key);
    for (const key of src.keys()) if (!own.has(key)) result.unexpected.push(key);
    for (const [key, t] of own) {
      const s = src.get(key);
      if (s && !sameShape(s.shape, t.shape)) result.mismatched.push({ key, expected: t.shape, found: s.shape });
    }
    return result;
  }

  /**
   * Copies tensors into this module's parameters and buffers by name. Strict by default: any
   * missing, unexpected or shape-mismatched key is an error that lists all of them, and then
   * nothing is copied. Not strict, every key that fits is copied.
   */
  loadStateDict(src: StateDict, opts: LoadOptions = {}): LoadResult {
    const result = this.compareStateDict(src);
    const bad = result.missing.length + result.unexpected.length + result.mismatched.length > 0;
    if (bad && (opts.strict ?? true)) throw new Error(`loadStateDict into ${this.typeName}: ${describeLoad(result)}`);
    const skip = new Set(result.mismatched.map((m) => m.key));
    noGrad(() => {
      for (const [key, t] of this.stateDict()) {
        const s = src.get(key);
        if (s && !skip.has(key)) t.copy_(s);
      }
    });
    return result;
  }

  // ---- modes and conversion ---------------------------------------------------------------------

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Calls fn on every module, children first (as nn.Module.apply). */
  apply(fn: (m: Module<unknown[], unknown>) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this as Module<unknown[], unknown>);
    return this;
  }

  /**
   * Moves or converts every parameter and buffer in place: to('cuda'), to('bfloat16'),
   * to({ memoryFormat: 'channelsLast' }). Floating tensors change dtype; integer buffers
   * (num_batches_tracked) keep theirs, as in PyTorch.
   */
  to(target: DType | string | { dtype?: DType; device?: string; memoryFormat?: MemoryFormat }): this {
    const t = typeof target === 'string' ? (isDType(target) ? { dtype: target } : { device: target }) : target;
    noGrad(() => {
      for (const m of this.modules()) {
        for (const [, p] of [...m.ownParameters(), ...m.ownBuffers()]) convertInPlace(p, t);
      }
    });
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Frees every parameter and buffer now. The module is unusable afterwards. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const [, p] of m.ownParameters()) p.dispose();
      for (const [, b] of m.ownBuffers()) b.dispose();
    }
  }

  /** extraRepr() shows a layer's settings in toString(), as in PyTorch. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.typeName}(${this.extraRepr()}`;
    if (kids.length === 0) return `${head})`;
    const body = kids.map(([k, m]) => `  (${k}): ${m.toString().replace(/\n/g, '\n  ')}`).join('\n');
    return `${head}\n${body}\n)`;
  }
}

const DTYPE_NAMES = new Set(['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);
const isDType = (s: string): s is DType => DTYPE_NAMES.has(s);

function convertInPlace(t: Tensor, o: { dtype?: DType; device?: string; memoryFormat?: MemoryFormat }): void {
  const floating = t.dtype.startsWith('float') || t.dtype === 'bfloat16';
  let next = t.to({ device: o.device, dtype: floating ? o.dtype : undefined });
  if (o.memoryFormat && t.ndim === 4) {
    const laid = next.contiguous(o.memoryFormat);
    if (next !== t && laid !== next) next.dispose();
    next = laid;
  }
  if (next !== t) {
    t.setData(next);
    next.dispose();
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function describeLoad(r: LoadResult): string {
  const parts: string[] = [];
  if (r.missing.length) parts.push(`missing keys (${r.missing.length}): ${r.missing.join(', ')}`);
  if (r.unexpected.length) parts.push(`unexpected keys (${r.unexpected.length}): ${r.unexpected.join(', ')}`);
  if (r.mismatched.length) {
    const m = r.mismatched.map((x) => `${x.key} (expected [${x.expected.join(', ')}], found [${x.found.join(', ')}])`);
    parts.push(`shape mismatches (${m.length}): ${m.join(', ')}`);
  }
  return parts.join('; ');
}
