// From a trace of engine ops to the graph IR in ONNX's operator set: one rule per engine op.
//
// The batch axis stays symbolic. Each value knows where the batch lives in it (an axis whose size
// is outer * N * factor, N the traced batch), so a reshape writes -1 at the dimension that holds
// the batch instead of the number seen while tracing, an Expand broadcasts from 1 there, and the
// few constants that only exist per sample (a zero initial state, a gather at a fixed step) turn
// into their batch-free forms. An op with no rule is an error naming the op and its module.
import type { Trace, TraceValue, TracedOp } from '../engine/trace.js';
import type { Tensor } from '../engine/index.js';
import { floatAttr, numel, type AttrValue, type ElemType, type Graph, type Initializer, type Node, type ValueInfo } from './graph.js';

export class ExportError extends Error {
  constructor(readonly op: string, readonly scope: string, message: string, what = 'engine op') {
    super(`cannot export ${what} '${op}' in module '${scope || '<top>'}': ${message}`);
    this.name = 'ExportError';
  }
}

export interface LowerOptions {
  opset: number;
  /** the batch the trace ran with, when the exported batch axis is dynamic; null for a fixed batch */
  dynamicBatch: number | null;
  inputNames: string[];
  outputNames: string[];
}

interface BatchInfo {
  axis: number;
  outer: number;
  factor: number;
}

const ELEM: Record<string, ElemType | undefined> = {
  float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', bool: 'bool',
};
const ONNX_DTYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };
export const onnxDtype = (t: ElemType): number => ONNX_DTYPE[t];

const prod = (a: number[]): number => a.reduce((x, y) => x * y, 1);
const norm = (d: number, rank: number): number => (d < 0 ? d + rank : d);

export function elemType(dtype: string, what: string): ElemType {
  const t = ELEM[dtype];
  if (!t) throw new Error(`${what}: dtype ${dtype} has no export (convert the model to float32 first)`);
  return t;
}

/** Lowers a trace into a graph; inputs get the symbolic batch 'batch' when dynamic. */
export function lower(trace: Trace, o: LowerOptions): Graph {
  return new Lowering(trace, o).run();
}

class Lowering {
  readonly nodes: Node[] = [];
  readonly inits = new Map<string, Initializer>();
  readonly names = new Map<number, string>();
  readonly batch = new Map<number, BatchInfo | null>();
  readonly valueInfo = new Map<string, ValueInfo>();
  readonly vals: TraceValue[];
  #counter = 0;
  op!: TracedOp;

  constructor(readonly trace: Trace, readonly o: LowerOptions) {
    this.vals = trace.values;
  }

  run(): Graph {
    const t = this.trace;
    const inputs = t.inputs.map((id, i) => {
      const v = this.vals[id];
      const name = this.o.inputNames[i] ?? `input${i}`;
      this.names.set(id, name);
      this.batch.set(id, this.o.dynamicBatch !== null ? { axis: 0, outer: 1, factor: 1 } : null);
      return { name, dtype: elemType(v.dtype, `input ${name}`), shape: this.symbolic(v.shape, this.batch.get(id)!) };
    });
    for (const op of t.ops) {
      this.op = op;
      this.lowerOp(op);
    }
    const outputs = t.outputs.map((id, i) => {
      const v = this.vals[id];
      const want = this.o.outputNames[i] ?? `output${i}`;
      let name = this.name(id);
      // a graph output must be a node's output under its own name: rename the producer's tensor
      const producer = this.nodes.find((n) => n.outputs.includes(name));
      if (producer && !t.outputs.slice(0, i).some((p) => this.names.get(p) === name) && !t.inputs.includes(id)) {
        this.rename(name, want);
        name = want;
      } else {
        this.op = { op: 'output', inputs: [], attrs: {}, outputs: [], scope: '' };
        [name] = this.emit('Identity', [name], {}, [want]);
      }
      return { name, dtype: elemType(v.dtype, `output ${want}`), shape: this.symbolic(v.shape, this.batch.get(id) ?? null) };
    });
    return { name: 'convkit', inputs, outputs, nodes: this.nodes, initializers: this.inits, valueInfo: this.valueInfo };
  }

  rename(from: string, to: string): void {
    for (const n of this.nodes) {
      n.inputs = n.inputs.map((x) => (x === from ? to : x));
      n.outputs = n.outputs.map((x) => (x === from ? to : x));
    }
    for (const [k, v] of this.names) if (v === from) this.names.set(k, to);
    const info = this.valueInfo.get(from);
    if (info) {
      this.valueInfo.delete(from);
      this.valueInfo.set(to, { ...info, name: to });
    }
  }

  symbolic(shape: number[], b: BatchInfo | null): (number | string)[] {
    if (!b) return shape;
    return shape.map((d, i) => (i === b.axis ? (b.outer === 1 && b.factor === 1 ? 'batch' : `${b.outer * b.factor}*batch`) : d));
  }

  fail(message: string): never {
    throw new ExportError(this.op.op, this.op.scope, message);
  }

  // ---- values --------------------------------------------------------------------------------

  value(id: number): TraceValue {
    return this.vals[id];
  }
  shape(id: number): number[] {
    return this.vals[id].shape;
  }
  isConst(id: number): boolean {
    return this.vals[id].kind === 'constant';
  }
  constTensor(id: number): Tensor {
    const t = this.vals[id].tensor;
    if (!t || this.vals[id].kind !== 'constant') this.fail('expected a constant (a parameter or buffer) here, got a value computed from the input');
    return t;
  }
  /** The tensor name of a value; a constant becomes an initializer on first use. */
  name(id: number): string {
    const known = this.names.get(id);
    if (known !== undefined) return known;
    const v = this.vals[id];
    if (v.kind !== 'constant' || !v.tensor) this.fail(`value ${id} was used before it was made`);
    const name = v.name || `const_${id}`;
    this.inits.set(name, initializerOf(v.tensor, name));
    this.names.set(id, name);
    this.batch.set(id, null);
    return name;
  }
  batchOf(id: number): BatchInfo | null {
    return this.batch.get(id) ?? null;
  }
  /** Binds op output k to a tensor name and batch info. */
  bind(k: number, name: string, b: BatchInfo | null): void {
    const id = this.op.outputs[k];
    this.names.set(id, name);
    this.batch.set(id, b);
    const v = this.vals[id];
    const dtype = ELEM[v.dtype];
    if (dtype && !this.valueInfo.has(name) && !this.inits.has(name)) this.valueInfo.set(name, { name, dtype, shape: this.symbolic(v.shape, b) });
  }
  /** The output is the input: no node. */
  alias(input: number, k = 0): void {
    this.bind(k, this.name(input), this.batchOf(input));
  }

  // ---- emitting ------------------------------------------------------------------------------

  emit(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[] | number): string[] {
    const i = this.#counter++;
    const outs = Array.isArray(outputs) ? outputs : Array.from({ length: outputs ?? 1 }, (_, k) => `${op.toLowerCase()}_${i}${k ? `_${k}` : ''}`);
    const scope = this.op.scope;
    this.nodes.push({ op, name: `${scope ? `/${scope.replace(/\./g, '/')}` : ''}/${op}_${i}`, inputs, outputs: outs, attrs, scope });
    return outs;
  }
  /** An initializer made by the lowering (scalars, shapes, repacked weights). */
  constant(data: Initializer['data'], dims: number[], dtype: ElemType, hint = 'const'): string {
    // a hint that is already a module path (a parameter's name) is not prefixed again
    const prefix = this.op.scope && !hint.includes('.') ? `${this.op.scope}.` : '';
    const name = `${prefix}${hint}_${this.#counter++}`;
    this.inits.set(name, { dtype, dims, data });
    return name;
  }
  ints(v: number[], hint = 'shape'): string {
    return this.constant(BigInt64Array.from(v.map((x) => BigInt(x))), [v.length], 'int64', hint);
  }
  scalar(v: number, dtype: ElemType): string {
    const data = dtype === 'float32' ? Float32Array.of(v) : dtype === 'float64' ? Float64Array.of(v) : dtype === 'int64' ? BigInt64Array.of(BigInt(Math.trunc(v)))
      : dtype === 'int32' ? Int32Array.of(v) : dtype === 'int8' ? Int8Array.of(v) : Uint8Array.of(Number(v));
    return this.constant(data, [], dtype, 'scalar');
  }
  outType(k = 0): ElemType {
    return elemType(this.vals[this.op.outputs[k]].dtype, `the output of ${this.op.op}`);
  }
  /** The input's name, cast to the output's type when the op promoted it. */
  castedTo(id: number, t: ElemType): string {
    const have = elemType(this.vals[id].dtype, 'an input');
    if (have === t) return this.name(id);
    return this.emit('Cast', [this.name(id)], { to: ONNX_DTYPE[t] })[0];
  }
  /** The batch info of a same-rank (or broadcast) result, from the first input that has one. */
  passBatch(ids: (number | null)[], outRank: number): BatchInfo | null {
    for (const id of ids) {
      if (id === null) continue;
      const b = this.batchOf(id);
      if (b) return { ...b, axis: b.axis + outRank - this.shape(id).length };
    }
    return null;
  }

  /** Reshape to a concrete shape, with -1 at the dimension that holds the batch. */
  reshape(input: number, outShape: number[]): void {
    const inShape = this.shape(input);
    if (inShape.length === outShape.length && inShape.every((d, i) => d === outShape[i])) return this.alias(input);
    const { shape, batch } = this.batchReshape(input, outShape);
    const [y] = this.emit('Reshape', [this.name(input), this.ints(shape)]);
    this.bind(0, y, batch);
  }
  batchReshape(input: number, outShape: number[]): { shape: number[]; batch: BatchInfo | null } {
    const b = this.batchOf(input);
    const N = this.o.dynamicBatch;
    if (!b || N === null) return { shape: outShape, batch: null };
    const inShape = this.shape(input);
    const A = prod(inShape.slice(0, b.axis)) * b.outer;
    const I = b.factor * prod(inShape.slice(b.axis + 1));
    for (let j = 0; j < outShape.length; j++) {
      const P = prod(outShape.slice(0, j));
      if (P > A) break;
      if (A % P !== 0) continue;
      const o2 = A / P;
      if (outShape[j] % (o2 * N) !== 0) continue;
      const f2 = outShape[j] / (o2 * N);
      if (prod(outShape.slice(j + 1)) * f2 !== I) continue;
      const shape = outShape.slice();
      shape[j] = -1;
      return { shape, batch: { axis: j, outer: o2, factor: f2 } };
    }
    this.fail(`a reshape from [${inShape.join(', ')}] to [${outShape.join(', ')}] mixes the batch with other dimensions; export with a fixed batch size`);
  }

  // ---- the rules -----------------------------------------------------------------------------

  lowerOp(op: TracedOp): void {
    const [a, b, c, d, e, f] = op.inputs;
    const x = a as number;
    const at = op.attrs;
    const outShape = this.shape(op.outputs[0]);
    const rank = outShape.length;
    const unaryOp = (onnx: string, attrs: Record<string, AttrValue> = {}): void => {
      const [y] = this.emit(onnx, [this.castedTo(x, this.outType())], attrs);
      this.bind(0, y, this.passBatch([x], rank));
    };
    const binaryOp = (onnx: string, second?: string, castInputs = true): void => {
      const t = this.outType();
      const other = b as number;
      const lhs = castInputs ? this.castedTo(x, t) : this.name(x);
      const rhs = second ?? (castInputs ? this.castedTo(other, t) : this.name(other));
      const [y] = this.emit(onnx, [lhs, rhs]);
      this.bind(0, y, this.passBatch([x, second === undefined ? other : null], rank));
    };
    const scalarOp = (onnx: string, reversed = false): void => {
      const t = this.outType();
      const s = this.scalar(Number(at.scalar), t);
      const xs = this.castedTo(x, t);
      const [y] = this.emit(onnx, reversed ? [s, xs] : [xs, s]);
      this.bind(0, y, this.passBatch([x], rank));
    };
    const compare = (onnx: string, negate = false, scalar = false): void => {
      const xt = elemType(this.vals[x].dtype, 'a comparison');
      const rhs = scalar ? this.scalar(Number(at.scalar), xt) : this.name(b as number);
      let [y] = this.emit(onnx, [this.name(x), rhs]);
      if (negate) [y] = this.emit('Not', [y]);
      this.bind(0, y, this.passBatch([x, scalar ? null : (b as number)], rank));
    };
    const alpha = (): void => {
      if (at.alpha !== null && at.alpha !== undefined && at.alpha !== 1) this.fail('alpha other than 1 is not exported');
    };

    switch (op.op) {
      case 'add': case 'add_': alpha(); return binaryOp('Add');
      case 'sub': case 'sub_': alpha(); return binaryOp('Sub');
      case 'mul': case 'mul_': return binaryOp('Mul');
      case 'div': case 'div_': return binaryOp('Div');
      case 'pow': return binaryOp('Pow', undefined, false);
      case 'maximum': return binaryOp('Max');
      case 'minimum': return binaryOp('Min');
      case 'addScalar': case 'addScalar_': return scalarOp('Add');
      case 'subScalar': return scalarOp('Sub');
      case 'rsubScalar': return scalarOp('Sub', true);
      case 'mulScalar': case 'mulScalar_': return scalarOp('Mul');
      case 'divScalar': case 'divScalar_': return scalarOp('Div');
      case 'powScalar': return scalarOp('Pow');
      case 'eq': return compare('Equal');
      case 'ne': return compare('Equal', true);
      case 'lt': return compare('Less');
      case 'le': return compare('LessOrEqual');
      case 'gt': return compare('Greater');
      case 'ge': return compare('GreaterOrEqual');
      case 'eqScalar': return compare('Equal', false, true);
      case 'neScalar': return compare('Equal', true, true);
      case 'ltScalar': return compare('Less', false, true);
      case 'leScalar': return compare('LessOrEqual', false, true);
      case 'gtScalar': return compare('Greater', false, true);
      case 'geScalar': return compare('GreaterOrEqual', false, true);
      case 'logicalNot': return unaryOp('Not');
      case 'where': {
        const [y] = this.emit('Where', [this.name(x), this.castedTo(b as number, this.outType()), this.castedTo(c as number, this.outType())]);
        return this.bind(0, y, this.passBatch([x, b as number, c as number], rank));
      }
      case 'maskedFill': {
        const [y] = this.emit('Where', [this.name(b as number), this.scalar(Number(at.value), this.outType()), this.name(x)]);
        return this.bind(0, y, this.passBatch([x, b as number], rank));
      }

      case 'neg': return unaryOp('Neg');
      case 'abs': return unaryOp('Abs');
      case 'exp': return unaryOp('Exp');
      case 'log': return unaryOp('Log');
      case 'sqrt': return unaryOp('Sqrt');
      case 'reciprocal': return unaryOp('Reciprocal');
      case 'floor': return unaryOp('Floor');
      case 'ceil': return unaryOp('Ceil');
      case 'sign': return unaryOp('Sign');
      case 'sin': return unaryOp('Sin');
      case 'cos': return unaryOp('Cos');
      case 'erf': return unaryOp('Erf');
      case 'relu': case 'relu_': return unaryOp('Relu');
      case 'sigmoid': return unaryOp('Sigmoid');
      case 'tanh': return unaryOp('Tanh');
      case 'rsqrt': {
        const [s] = this.emit('Sqrt', [this.name(x)]);
        const [y] = this.emit('Reciprocal', [s]);
        return this.bind(0, y, this.passBatch([x], rank));
      }
      case 'relu6': return this.clip(x, 0, 6);
      case 'hardtanh': return this.clip(x, Number(at.min), Number(at.max));
      case 'clamp': return this.clip(x, at.min === null ? null : Number(at.min), at.max === null ? null : Number(at.max));
      case 'silu': {
        const [s] = this.emit('Sigmoid', [this.name(x)]);
        const [y] = this.emit('Mul', [this.name(x), s]);
        return this.bind(0, y, this.passBatch([x], rank));
      }
      case 'hardswish': return unaryOp('HardSwish');
      case 'hardsigmoid': return unaryOp('HardSigmoid', { alpha: floatAttr(1 / 6), beta: floatAttr(0.5) });
      case 'leakyRelu': return unaryOp('LeakyRelu', { alpha: floatAttr(Number(at.negativeSlope)) });
      case 'elu': return unaryOp('Elu', { alpha: floatAttr(Number(at.alpha)) });
      case 'mish': {
        const [sp] = this.emit('Softplus', [this.name(x)]);
        const [th] = this.emit('Tanh', [sp]);
        const [y] = this.emit('Mul', [this.name(x), th]);
        return this.bind(0, y, this.passBatch([x], rank));
      }
      case 'softplus': {
        if (Number(at.beta) !== 1) this.fail('softplus with beta other than 1 is not exported');
        return unaryOp('Softplus');
      }
      case 'gelu': return this.gelu(x, String(at.approximate ?? 'none'));
      case 'softmax': case 'logSoftmax': {
        if (at.dtype !== null && at.dtype !== undefined) this.fail('softmax with a dtype is not exported');
        return unaryOp(op.op === 'softmax' ? 'Softmax' : 'LogSoftmax', { axis: norm(Number(at.dim), rank) });
      }

      // ---- conversion and shape ----
      case 'to': {
        const t = this.outType();
        if (t === elemType(this.vals[x].dtype, 'to')) return this.alias(x);
        const [y] = this.emit('Cast', [this.name(x)], { to: ONNX_DTYPE[t] });
        return this.bind(0, y, this.batchOf(x));
      }
      case 'contiguous': case 'clone': case 'detach': return this.alias(x);
      case 'reshape': case 'view': case 'unflatten': return this.reshape(x, outShape);
      case 'flatten': {
        const inRank = this.shape(x).length;
        const bi = this.batchOf(x);
        const end = norm(Number(at.endDim), inRank);
        if (Number(at.startDim) === 1 && end === inRank - 1 && inRank >= 2 && (!bi || (bi.axis === 0 && bi.outer === 1))) {
          if (inRank === 2) return this.alias(x);
          const [y] = this.emit('Flatten', [this.name(x)], { axis: 1 });
          return this.bind(0, y, bi);
        }
        return this.reshape(x, outShape);
      }
      case 'squeeze': {
        const inShape = this.shape(x);
        const axes = at.dim === null ? inShape.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0) : [norm(Number(at.dim), inShape.length)].filter((i) => inShape[i] === 1);
        if (axes.length === 0) return this.alias(x);
        const [y] = this.emit('Squeeze', [this.name(x), this.ints(axes, 'axes')]);
        return this.bind(0, y, this.dropAxes(x, axes));
      }
      case 'unsqueeze': {
        const axis = norm(Number(at.dim), rank);
        const [y] = this.emit('Unsqueeze', [this.name(x), this.ints([axis], 'axes')]);
        const bi = this.batchOf(x);
        return this.bind(0, y, bi && { ...bi, axis: bi.axis + (axis <= bi.axis ? 1 : 0) });
      }
      case 'permute': case 'transpose': {
        const inRank = this.shape(x).length;
        let perm: number[];
        if (op.op === 'permute') perm = (at.order as number[]).map((p) => norm(p, inRank));
        else {
          perm = Array.from({ length: inRank }, (_, i) => i);
          const d0 = norm(Number(at.dim0), inRank);
          const d1 = norm(Number(at.dim1), inRank);
          [perm[d0], perm[d1]] = [perm[d1], perm[d0]];
        }
        if (perm.every((p, i) => p === i)) return this.alias(x);
        const [y] = this.emit('Transpose', [this.name(x)], { perm });
        const bi = this.batchOf(x);
        return this.bind(0, y, bi && { ...bi, axis: perm.indexOf(bi.axis) });
      }
      case 'expand': {
        const inShape = this.shape(x);
        if (inShape.length === rank && inShape.every((s, i) => s === outShape[i])) return this.alias(x);
        const bi = this.passBatch([x], rank);
        const target = outShape.map((s, i) => (bi && i === bi.axis ? 1 : s));
        const [y] = this.emit('Expand', [this.name(x), this.ints(target)]);
        return this.bind(0, y, bi);
      }
      case 'narrow': {
        const dim = norm(Number(at.dim), rank);
        const start = norm(Number(at.start), this.shape(x)[dim]);
        return this.slice(x, dim, start, start + Number(at.length), 1);
      }
      case 'slice': {
        const dim = norm(Number(at.dim), rank);
        const size = this.shape(x)[dim];
        const start = at.start === null ? 0 : Math.max(0, Math.min(size, norm(Number(at.start), size)));
        const end = at.end === null ? size : Math.max(0, Math.min(size, norm(Number(at.end), size)));
        return this.slice(x, dim, start, end, Number(at.step ?? 1));
      }
      case 'select': {
        const inShape = this.shape(x);
        const dim = norm(Number(at.dim), inShape.length);
        const index = norm(Number(at.index), inShape[dim]);
        if (this.batchOf(x)?.axis === dim) this.fail('selecting along the batch axis is not exported');
        const [y] = this.emit('Gather', [this.name(x), this.constant(BigInt64Array.of(BigInt(index)), [], 'int64', 'index')], { axis: dim });
        return this.bind(0, y, this.dropAxes(x, [dim]));
      }
      case 'chunk': case 'split': case 'splitWithSizes': {
        const inShape = this.shape(x);
        const dim = norm(Number(at.dim), inShape.length);
        const sizes = op.outputs.map((id) => this.shape(id)[dim]);
        if (sizes.length === 1) return this.alias(x);
        if (this.batchOf(x)?.axis === dim) this.fail('splitting along the batch axis is not exported');
        const ys = this.emit('Split', [this.name(x), this.ints(sizes, 'split')], { axis: dim }, sizes.length);
        ys.forEach((y, k) => this.bind(k, y, this.batchOf(x)));
        return;
      }
      case 'cat': case 'stack': {
        const list = a as number[];
        const dim = norm(Number(at.dim), rank);
        if (list.some((id) => this.batchOf(id)?.axis === dim)) this.fail('joining along the batch axis is not exported');
        let names = list.map((id) => this.castedTo(id, this.outType()));
        if (op.op === 'stack') names = names.map((n) => this.emit('Unsqueeze', [n, this.ints([dim], 'axes')])[0]);
        else if (names.length === 1) return this.alias(list[0]);
        const [y] = this.emit('Concat', names, { axis: dim });
        const bi = this.passBatch(list, rank - (op.op === 'stack' ? 1 : 0));
        return this.bind(0, y, bi && op.op === 'stack' ? { ...bi, axis: bi.axis + (dim <= bi.axis ? 1 : 0) } : bi);
      }
      case 'repeat': {
        const times = at.times as number[];
        if (times.length !== this.shape(x).length) this.fail('repeat that adds dimensions is not exported');
        const [y] = this.emit('Tile', [this.name(x), this.ints(times, 'repeats')]);
        return this.bind(0, y, this.passBatch([x], rank));
      }
      case 'gather': return this.gather(x, Number(at.dim), b as number);
      case 'indexSelect': {
        const dim = norm(Number(at.dim), rank);
        const [y] = this.emit('Gather', [this.name(x), this.name(b as number)], { axis: dim });
        return this.bind(0, y, this.passBatch([x], rank));
      }
      case 'embedding': {
        // native.embedding(weight, indices, paddingIdx)
        const [y] = this.emit('Gather', [this.name(x), this.name(b as number)], { axis: 0 });
        return this.bind(0, y, this.passBatch([b as number], rank));
      }

      // ---- reductions ----
      case 'sum': case 'mean': case 'amax': case 'amin': {
        const inRank = this.shape(x).length;
        const dims = at.dims === null ? Array.from({ length: inRank }, (_, i) => i) : (Array.isArray(at.dims) ? at.dims : [Number(at.dims)]).map((dd) => norm(dd, inRank));
        const keep = at.keepdim === true ? 1 : 0;
        const onnx = { sum: 'ReduceSum', mean: 'ReduceMean', amax: 'ReduceMax', amin: 'ReduceMin' }[op.op]!;
        const asInput = onnx === 'ReduceSum' || this.o.opset >= 18;
        const src = this.castedTo(x, this.outType());
        const [y] = asInput ? this.emit(onnx, [src, this.ints(dims, 'axes')], { keepdims: keep }) : this.emit(onnx, [src], { axes: dims, keepdims: keep });
        const bi = this.batchOf(x);
        if (bi && dims.includes(bi.axis)) return this.bind(0, y, null);
        return this.bind(0, y, keep ? bi : this.dropAxes(x, dims));
      }
      case 'argmax': {
        if (at.dim === null) this.fail('argmax over all elements is not exported');
        const [y] = this.emit('ArgMax', [this.name(x)], { axis: norm(Number(at.dim), this.shape(x).length), keepdims: at.keepdim ? 1 : 0 });
        return this.bind(0, y, at.keepdim ? this.batchOf(x) : this.dropAxes(x, [norm(Number(at.dim), this.shape(x).length)]));
      }

      // ---- layers ----
      case 'matmul': case 'mm': case 'bmm': {
        const [y] = this.emit('MatMul', [this.name(x), this.name(b as number)]);
        return this.bind(0, y, this.passBatch([x, b as number], rank));
      }
      case 'linear': return this.linear(x, b as number, c as number | null);
      case 'conv2d': case 'conv1d': return this.conv(x, b as number, c as number | null, at);
      case 'batchNorm': {
        if (at.training === true) this.fail('batch norm in training mode (batch statistics) has no static form: call model.eval(), and give BatchNorm running statistics');
        const C = this.shape(x)[1];
        const scale = d === null ? this.constant(new Float32Array(C).fill(1), [C], 'float32', 'ones') : this.name(d as number);
        const bias = e === null ? this.constant(new Float32Array(C), [C], 'float32', 'zeros') : this.name(e as number);
        const [y] = this.emit('BatchNormalization', [this.name(x), scale, bias, this.name(b as number), this.name(c as number)], { epsilon: floatAttr(Number(at.eps)) });
        const sum = typeof f === 'number' ? this.emit('Add', [y, this.name(f)])[0] : y;
        return this.bind(0, at.relu === true ? this.emit('Relu', [sum])[0] : sum, this.batchOf(x));
      }
      case 'layerNorm': {
        if (this.o.opset < 17) this.fail('LayerNormalization needs opset 17 or later');
        const shape = at.normalizedShape as number[] | number;
        const n = Array.isArray(shape) ? shape.length : 1;
        const dims = this.shape(x).slice(-n);
        const scale = b === null ? this.constant(new Float32Array(prod(dims)).fill(1), dims, 'float32', 'ones') : this.name(b as number);
        const inputs = [this.name(x), scale];
        if (c !== null) inputs.push(this.name(c as number));
        const [y] = this.emit('LayerNormalization', inputs, { axis: -n, epsilon: floatAttr(Number(at.eps)) });
        return this.bind(0, y, this.batchOf(x));
      }
      case 'maxPool2d': case 'avgPool2d': {
        const k = at.kernel as number[];
        const p = at.padding as number[];
        const attrs: Record<string, AttrValue> = { kernel_shape: k, strides: at.stride as number[], pads: [p[0], p[1], p[0], p[1]], ceil_mode: at.ceilMode ? 1 : 0 };
        if (op.op === 'maxPool2d') {
          const dil = at.dilation as number[];
          if (dil.some((v) => v !== 1)) attrs.dilations = dil;
        } else attrs.count_include_pad = at.countIncludePad ? 1 : 0;
        const [y] = this.emit(op.op === 'maxPool2d' ? 'MaxPool' : 'AveragePool', [this.name(x)], attrs);
        return this.bind(0, y, this.batchOf(x));
      }
      case 'adaptiveAvgPool2d': case 'adaptiveMaxPool2d': {
        const [, , H, W] = this.shape(x);
        const [oh, ow] = outShape.slice(2);
        const avg = op.op === 'adaptiveAvgPool2d';
        if (oh === H && ow === W) return this.alias(x);
        let y: string;
        if (oh === 1 && ow === 1) [y] = this.emit(avg ? 'GlobalAveragePool' : 'GlobalMaxPool', [this.name(x)]);
        else if (H % oh === 0 && W % ow === 0) {
          const kk = [H / oh, W / ow];
          [y] = this.emit(avg ? 'AveragePool' : 'MaxPool', [this.name(x)], { kernel_shape: kk, strides: kk });
        } else this.fail(`adaptive pooling from ${H}x${W} to ${oh}x${ow} (not a whole multiple) has no ONNX form`);
        return this.bind(0, y, this.batchOf(x));
      }
      case 'pad': {
        const p = at.padding as number[];
        const inRank = this.shape(x).length;
        const begins = new Array<number>(inRank).fill(0);
        const ends = new Array<number>(inRank).fill(0);
        for (let i = 0; i < p.length / 2; i++) {
          begins[inRank - 1 - i] = p[2 * i];
          ends[inRank - 1 - i] = p[2 * i + 1];
        }
        const mode = at.mode === 'replicate' ? 'edge' : String(at.mode ?? 'constant');
        const inputs = [this.name(x), this.ints([...begins, ...ends], 'pads')];
        if (mode === 'constant') inputs.push(this.scalar(Number(at.value ?? 0), this.outType()));
        const [y] = this.emit('Pad', inputs, { mode });
        return this.bind(0, y, this.batchOf(x));
      }
      case 'interpolate': {
        const [, , H, W] = this.shape(x);
        const [oh, ow] = outShape.slice(2);
        const mode = String(at.mode);
        if (at.antialias === true && mode !== 'nearest') {
          if (this.o.opset < 18) this.fail('antialiased resizing needs opset 18 or later');
        }
        const attrs: Record<string, AttrValue> = mode === 'nearest'
          ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
          : { mode: mode === 'bilinear' ? 'linear' : 'cubic', coordinate_transformation_mode: at.alignCorners ? 'align_corners' : 'pytorch_half_pixel' };
        if (mode === 'bicubic') attrs.cubic_coeff_a = floatAttr(-0.75);
        if (at.antialias === true && mode !== 'nearest') attrs.antialias = 1;
        // scales rather than sizes, so that the batch stays free
        const scales = this.constant(Float32Array.of(1, 1, oh / H, ow / W), [4], 'float32', 'scales');
        const [y] = this.emit('Resize', [this.name(x), '', scales], attrs);
        return this.bind(0, y, this.batchOf(x));
      }
      case 'dropout': case 'featureDropout':
        if (at.training === true && Number(at.p) > 0) this.fail('dropout in training mode: call model.eval() before exporting');
        return this.alias(x);
      case 'lstm': case 'gru': case 'rnnTanh': case 'rnnRelu': return this.recurrent(op);
      default:
        this.fail('no ONNX mapping for this op');
    }
  }

  dropAxes(id: number, axes: number[]): BatchInfo | null {
    const bi = this.batchOf(id);
    if (!bi || axes.includes(bi.axis)) return null;
    return { ...bi, axis: bi.axis - axes.filter((a) => a < bi.axis).length };
  }

  clip(x: number, min: number | null, max: number | null): void {
    const t = this.outType();
    const inputs = [this.name(x), min === null ? '' : this.scalar(min, t)];
    if (max !== null) inputs.push(this.scalar(max, t));
    const [y] = this.emit('Clip', inputs);
    this.bind(0, y, this.batchOf(x));
  }

  gelu(x: number, approximate: string): void {
    const t = this.outType();
    const xn = this.name(x);
    let y: string;
    if (this.o.opset >= 20) [y] = this.emit('Gelu', [xn], { approximate });
    else if (approximate === 'tanh') {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const [x3] = this.emit('Pow', [xn, this.scalar(3, t)]);
      const [m] = this.emit('Mul', [x3, this.scalar(0.044715, t)]);
      const [s] = this.emit('Add', [xn, m]);
      const [k] = this.emit('Mul', [s, this.scalar(Math.sqrt(2 / Math.PI), t)]);
      const [th] = this.emit('Tanh', [k]);
      const [one] = this.emit('Add', [th, this.scalar(1, t)]);
      const [hx] = this.emit('Mul', [xn, this.scalar(0.5, t)]);
      [y] = this.emit('Mul', [hx, one]);
    } else {
      // x * 0.5 * (1 + erf(x / sqrt(2))), as torch.onnx writes it
      const [dv] = this.emit('Div', [xn, this.scalar(Math.SQRT2, t)]);
      const [er] = this.emit('Erf', [dv]);
      const [ad] = this.emit('Add', [er, this.scalar(1, t)]);
      const [mu] = this.emit('Mul', [xn, ad]);
      [y] = this.emit('Mul', [mu, this.scalar(0.5, t)]);
    }
    this.bind(0, y, this.batchOf(x));
  }

  slice(x: number, dim: number, start: number, end: number, step: number): void {
    const size = this.shape(x)[dim];
    if (start === 0 && end >= size && step === 1) return this.alias(x);
    const bi = this.batchOf(x);
    if (bi?.axis === dim) this.fail('slicing along the batch axis is not exported');
    const [y] = this.emit('Slice', [this.name(x), this.ints([start], 'starts'), this.ints([end], 'ends'), this.ints([dim], 'axes'), this.ints([step], 'steps')]);
    this.bind(0, y, bi);
  }

  /** torch.gather; a constant index that picks one position everywhere (the last step of a sequence) becomes a Slice, which keeps the batch free. */
  gather(x: number, dimAttr: number, index: number): void {
    const inShape = this.shape(x);
    const dim = norm(dimAttr, inShape.length);
    const idxShape = this.shape(index);
    if (this.isConst(index)) {
      const flat = Array.from(this.constTensor(index).toTypedArray() as BigInt64Array, Number);
      const k = flat[0];
      if (idxShape[dim] === 1 && flat.every((v) => v === k)) {
        let cur = this.name(x);
        const starts: number[] = [];
        const ends: number[] = [];
        const axes: number[] = [];
        idxShape.forEach((s, i) => {
          if (i === dim) { starts.push(norm(k, inShape[i])); ends.push(norm(k, inShape[i]) + s); axes.push(i); } else if (s < inShape[i]) { starts.push(0); ends.push(s); axes.push(i); }
        });
        [cur] = this.emit('Slice', [cur, this.ints(starts, 'starts'), this.ints(ends, 'ends'), this.ints(axes, 'axes')]);
        return this.bind(0, cur, this.batchOf(x));
      }
      if (this.o.dynamicBatch !== null && this.batchOf(x)) this.fail('gather with a constant per-sample index cannot keep the batch dynamic; export with a fixed batch size');
    }
    const [y] = this.emit('GatherElements', [this.name(x), this.name(index)], { axis: dim });
    this.bind(0, y, this.batchOf(x));
  }

  linear(x: number, w: number, bias: number | null): void {
    const inRank = this.shape(x).length;
    const rank = this.shape(this.op.outputs[0]).length;
    if (inRank === 2) {
      const inputs = [this.name(x), this.name(w)];
      if (bias !== null) inputs.push(this.name(bias));
      const [y] = this.emit('Gemm', inputs, { transB: 1 });
      return this.bind(0, y, this.batchOf(x));
    }
    let wt: string;
    if (this.isConst(w)) {
      const t = this.constTensor(w);
      const [o, i] = t.shape;
      const src = t.toTypedArray() as Float32Array;
      const out = new Float32Array(o * i);
      for (let r = 0; r < o; r++) for (let cc = 0; cc < i; cc++) out[cc * o + r] = src[r * i + cc];
      wt = this.constant(out, [i, o], 'float32', `${this.value(w).name || 'weight'}_t`);
    } else [wt] = this.emit('Transpose', [this.name(w)], { perm: [1, 0] });
    let [y] = this.emit('MatMul', [this.name(x), wt]);
    if (bias !== null) [y] = this.emit('Add', [y, this.name(bias)]);
    this.bind(0, y, this.passBatch([x], rank));
  }

  conv(x: number, w: number, bias: number | null, at: Record<string, unknown>): void {
    const wShape = this.shape(w);
    const k = wShape.slice(2);
    const nd = k.length;
    const stride = at.stride as number[];
    const dilation = at.dilation as number[];
    let pads: number[];
    if (at.padding === 'same') {
      const before = k.map((kk, i) => Math.floor((dilation[i] * (kk - 1)) / 2));
      pads = [...before, ...k.map((kk, i) => dilation[i] * (kk - 1) - before[i])];
    } else if (at.padding === 'valid') pads = new Array<number>(2 * nd).fill(0);
    else pads = [...(at.padding as number[]), ...(at.padding as number[])];
    const inputs = [this.name(x), this.name(w)];
    if (bias !== null) inputs.push(this.name(bias));
    const attrs: Record<string, AttrValue> = { kernel_shape: k, strides: stride, pads, dilations: dilation, group: Number(at.groups) };
    const [y] = this.emit('Conv', inputs, attrs);
    this.bind(0, y, this.batchOf(x));
  }

  /** PyTorch's fused recurrent kernels as one ONNX LSTM / GRU / RNN per layer (ONNX's are single-layer). */
  recurrent(op: TracedOp): void {
    const at = op.attrs;
    const x = op.inputs[0] as number;
    const isLstm = op.op === 'lstm';
    const hx = (isLstm ? op.inputs[1] : [op.inputs[1]]) as number[];
    const weights = op.inputs[2] as number[];
    const layers = Number(at.numLayers);
    const dirs = at.bidirectional ? 2 : 1;
    const batchFirst = at.batchFirst === true;
    const hasBiases = at.hasBiases === true;
    if (at.training === true && Number(at.dropout) > 0 && layers > 1) this.fail('recurrent dropout in training mode: call model.eval() before exporting');
    for (const h of hx) {
      if (!this.isConst(h) || (this.constTensor(h).toTypedArray() as Float32Array).some((v) => v !== 0)) {
        this.fail('a recurrent layer with a given initial state is not exported (only the zero state)');
      }
    }
    const onnxOp = isLstm ? 'LSTM' : op.op === 'gru' ? 'GRU' : 'RNN';
    // PyTorch's gate blocks in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h
    const order = isLstm ? [0, 3, 1, 2] : op.op === 'gru' ? [1, 0, 2] : [0];
    const perLayer = hasBiases ? 4 : 2;
    const H = this.shape(weights[1])[1];
    let seq = this.name(x);
    if (batchFirst) [seq] = this.emit('Transpose', [seq], { perm: [1, 0, 2] });
    const hOut: string[] = [];
    const cOut: string[] = [];
    let last = '';
    for (let l = 0; l < layers; l++) {
      const W: Float32Array[] = [];
      const R: Float32Array[] = [];
      const B: Float32Array[] = [];
      for (let dd = 0; dd < dirs; dd++) {
        const base = (l * dirs + dd) * perLayer;
        const get = (k: number): Float32Array => this.constTensor(weights[base + k]).toTypedArray() as Float32Array;
        W.push(reorderGates(get(0), order));
        R.push(reorderGates(get(1), order));
        B.push(hasBiases ? concat([reorderGates(get(2), order), reorderGates(get(3), order)]) : new Float32Array(2 * order.length * H));
      }
      const inSize = this.shape(weights[l * dirs * perLayer])[1];
      const G = order.length * H;
      const attrs: Record<string, AttrValue> = { hidden_size: H, direction: dirs === 2 ? 'bidirectional' : 'forward' };
      if (op.op === 'gru') attrs.linear_before_reset = 1;
      if (op.op === 'rnnRelu') attrs.activations = new Array<string>(dirs).fill('Relu');
      const inputs = [seq, this.constant(concat(W), [dirs, G, inSize], 'float32', `${onnxOp}_W`), this.constant(concat(R), [dirs, G, H], 'float32', `${onnxOp}_R`),
        this.constant(concat(B), [dirs, 2 * G], 'float32', `${onnxOp}_B`)];
      const outs = this.emit(onnxOp, inputs, attrs, isLstm ? 3 : 2);
      hOut.push(outs[1]);
      if (isLstm) cOut.push(outs[2]);
      // Y [T, dirs, N, H] -> [T, N, dirs * H] (or [N, T, dirs * H] after the last layer, batch first)
      const lastLayer = l === layers - 1;
      const [tr] = this.emit('Transpose', [outs[0]], { perm: lastLayer && batchFirst ? [2, 0, 1, 3] : [0, 2, 1, 3] });
      [seq] = this.emit('Reshape', [tr, this.ints([0, 0, -1])]);
      last = seq;
    }
    const dyn = this.o.dynamicBatch !== null && this.batchOf(x) !== null;
    this.bind(0, last, dyn ? { axis: batchFirst ? 0 : 1, outer: 1, factor: 1 } : null);
    const join = (parts: string[]): string => (parts.length === 1 ? parts[0] : this.emit('Concat', parts, { axis: 0 })[0]);
    this.bind(1, join(hOut), dyn ? { axis: 1, outer: 1, factor: 1 } : null);
    if (isLstm) this.bind(2, join(cOut), dyn ? { axis: 1, outer: 1, factor: 1 } : null);
  }
}

function reorderGates(src: Float32Array, order: number[]): Float32Array {
  const block = src.length / order.length;
  const out = new Float32Array(src.length);
  order.forEach((g, k) => out.set(src.subarray(g * block, (g + 1) * block), k * block));
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

/** A tensor's elements as an initializer. */
export function initializerOf(t: Tensor, name: string): Initializer {
  const dtype = elemType(t.dtype, `constant ${name}`);
  const data = t.toTypedArray() as Initializer['data'];
  if (numel(t.shape) !== data.length) throw new Error(`constant ${name}: element count mismatch`);
  return { dtype, dims: t.shape, data };
}
