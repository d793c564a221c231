// The Tensor: a typed face over one native libtorch tensor. Methods follow PyTorch's names and
// semantics (broadcasting, type promotion, negative dims); in-place methods end in `_`.
import { native, type Handle } from './native.js';
import { BYTES_PER_ELEMENT, dtypeCode, dtypeFromCode, typedArrayFor, type DType, type TypedArray } from './dtype.js';
import { watch } from './lifetime.js';
import { setTensorCheck, track } from './scope.js';

export type MemoryFormat = 'contiguous' | 'channelsLast';
export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
/** Nested JS arrays, as toArray() returns them. */
export type NestedArray = number | boolean | NestedArray[];

/** What a disposed Tensor holds instead of its id; the addon reports it as a disposed tensor. */
const DISPOSED = -1 as Handle;

type UnaryOp = (x: Handle) => Handle;
type BinaryOp = (a: Handle, b: Handle, alpha?: number) => Handle;
type ScalarOp = (a: Handle, s: Scalar) => Handle;

const dims = (d: number | number[] | undefined): number[] | undefined => (d === undefined ? undefined : Array.isArray(d) ? d : [d]);

export class Tensor {
  #handle: Handle;
  #shape: number[] | undefined;
  /** Set by keep(): the tensor survives the tidy() scopes it was made in. */
  kept = false;

  /** @internal Wraps a native handle; use the creation functions instead. */
  constructor(handle: Handle) {
    this.#handle = handle;
    track(this);
    watch(this);
  }

  /** @internal The native handle, for the engine's own functions. */
  get handle(): Handle {
    return this.#handle;
  }

  // ---- metadata ---------------------------------------------------------------------------

  get shape(): number[] {
    return (this.#shape ??= native.shape(this.#handle)).slice();
  }
  get ndim(): number {
    return (this.#shape ??= native.shape(this.#handle)).length;
  }
  size(dim: number): number {
    const s = (this.#shape ??= native.shape(this.#handle));
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): dimension out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get strides(): number[] {
    return native.strides(this.#handle);
  }
  get dtype(): DType {
    return dtypeFromCode(native.dtype(this.#handle));
  }
  get device(): string {
    return native.device(this.#handle);
  }
  numel(): number {
    return native.numel(this.#handle);
  }
  isContiguous(): boolean {
    return native.isContiguous(this.#handle);
  }
  isChannelsLast(): boolean {
    return native.isChannelsLast(this.#handle);
  }
  /** True when both tensors view the same storage. */
  sharesStorageWith(other: Tensor): boolean {
    return native.sharesStorage(this.#handle, other.#handle);
  }

  // ---- lifetime -----------------------------------------------------------------------------

  /** Frees the native memory now (views keep their storage alive). Safe to call twice. */
  dispose(): void {
    if (this.#handle === DISPOSED) return;
    native.dispose(this.#handle);
    this.#handle = DISPOSED;
  }
  // Only dispose() frees a reachable tensor's slot (the backstop frees unreachable ones).
  get isDisposed(): boolean {
    return this.#handle === DISPOSED;
  }
  /**
   * Replaces this tensor's data while keeping the object (PyTorch's `param.data = src`): the
   * tensor then views src's data, and keeps its requiresGrad flag. Used by Module.to().
   */
  setData(src: Tensor): void {
    const requiresGrad = this.requiresGrad;
    const old = this.#handle;
    this.#handle = native.detach(src.#handle);
    this.#shape = undefined;
    native.dispose(old);
    if (requiresGrad) native.setRequiresGrad(this.#handle, true);
    watch(this);
  }
  /** Keeps this tensor alive past the tidy() scopes it is made in. */
  keep(): this {
    this.kept = true;
    return this;
  }

  // ---- read-back ----------------------------------------------------------------------------

  /** A copy of the elements in a typed array of the exact dtype (float16/bfloat16 as raw words). */
  toTypedArray(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.#handle));
  }
  /** A copy of the contiguous little-endian bytes. */
  toBytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.#handle));
  }
  /** Bytes that alias this contiguous CPU tensor's memory: writing into them fills the tensor. */
  bytesView(): Uint8Array {
    return new Uint8Array(native.alias(this.#handle));
  }
  /** The elements as nested JS arrays (int64 as numbers, exact up to 2^53). */
  toArray(): NestedArray {
    const d = this.dtype;
    const src = d === 'float16' || d === 'bfloat16' ? this.to('float32') : this;
    const flat = src.toTypedArray();
    if (src !== this) src.dispose();
    const at = (i: number): number | boolean => {
      const v = flat[i];
      return d === 'bool' ? v !== 0 : typeof v === 'bigint' ? Number(v) : (v as number);
    };
    const shape = this.shape;
    let pos = 0;
    const build = (depth: number): NestedArray =>
      depth === shape.length ? at(pos++) : Array.from({ length: shape[depth] }, () => build(depth + 1));
    return build(0);
  }
  /** The value of a one-element tensor. */
  item(): number {
    return Number(native.item(this.#handle));
  }
  toString(): string {
    const n = this.numel();
    const body = n <= 64 ? JSON.stringify(this.toArray()) : `<${n} elements>`;
    return `tensor(${body}, shape=[${this.shape.join(', ')}], dtype=${this.dtype}${this.device === 'cpu' ? '' : `, device=${this.device}`})`;
  }

  // ---- conversion ---------------------------------------------------------------------------

  /** to('float16'), to('cuda:0'), or to({ dtype, device }). Returns this tensor when nothing changes. */
  to(target: DType | string | { dtype?: DType; device?: string }): Tensor {
    const t = typeof target === 'string' ? (target in BYTES_PER_ELEMENT ? { dtype: target as DType } : { device: target }) : target;
    return wrapMaybeSame(this, native.to(this.#handle, t.device, t.dtype === undefined ? undefined : dtypeCode(t.dtype)));
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  half(): Tensor { return this.to('float16'); }
  bfloat16(): Tensor { return this.to('bfloat16'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  clone(): Tensor { return new Tensor(native.clone(this.#handle)); }
  contiguous(format: MemoryFormat = 'contiguous'): Tensor {
    return wrapMaybeSame(this, native.contiguous(this.#handle, format === 'channelsLast'));
  }

  // ---- views and shape ----------------------------------------------------------------------

  reshape(shape: number[]): Tensor { return new Tensor(native.reshape(this.#handle, shape)); }
  view(shape: number[]): Tensor { return new Tensor(native.view(this.#handle, shape)); }
  permute(order: number[]): Tensor { return new Tensor(native.permute(this.#handle, order)); }
  transpose(dim0: number, dim1: number): Tensor { return new Tensor(native.transpose(this.#handle, dim0, dim1)); }
  /** The transpose of a 2-d tensor. */
  get T(): Tensor { return this.transpose(0, 1); }
  squeeze(dim?: number): Tensor { return new Tensor(native.squeeze(this.#handle, dim)); }
  unsqueeze(dim: number): Tensor { return new Tensor(native.unsqueeze(this.#handle, dim)); }
  expand(shape: number[]): Tensor { return new Tensor(native.expand(this.#handle, shape)); }
  expandAs(other: Tensor): Tensor { return this.expand(other.shape); }
  narrow(dim: number, start: number, length: number): Tensor { return new Tensor(native.narrow(this.#handle, dim, start, length)); }
  /** Python's x[start:end:step] along dim. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return new Tensor(native.slice(this.#handle, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor { return new Tensor(native.select(this.#handle, dim, index)); }
  asStrided(size: number[], stride: number[], storageOffset = 0): Tensor {
    return new Tensor(native.asStrided(this.#handle, size, stride, storageOffset));
  }
  flatten(startDim = 0, endDim = -1): Tensor { return new Tensor(native.flatten(this.#handle, startDim, endDim)); }
  unflatten(dim: number, sizes: number[]): Tensor { return new Tensor(native.unflatten(this.#handle, dim, sizes)); }
  flip(dims: number[]): Tensor { return new Tensor(native.flip(this.#handle, dims)); }
  roll(shifts: number | number[], dims: number | number[]): Tensor { return new Tensor(native.roll(this.#handle, shifts, dims)); }
  repeat(times: number[]): Tensor { return new Tensor(native.repeat(this.#handle, times)); }
  tril(diagonal = 0): Tensor { return new Tensor(native.tril(this.#handle, diagonal)); }
  triu(diagonal = 0): Tensor { return new Tensor(native.triu(this.#handle, diagonal)); }
  indexSelect(dim: number, index: Tensor): Tensor { return new Tensor(native.indexSelect(this.#handle, dim, index.#handle)); }
  gather(dim: number, index: Tensor): Tensor { return new Tensor(native.gather(this.#handle, dim, index.#handle)); }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor { return new Tensor(native.scatter(this.#handle, dim, index.#handle, src.#handle)); }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return new Tensor(native.scatterAdd(this.#handle, dim, index.#handle, src.#handle)); }
  maskedSelect(mask: Tensor): Tensor { return new Tensor(native.maskedSelect(this.#handle, mask.#handle)); }
  maskedFill(mask: Tensor, value: Scalar): Tensor { return new Tensor(native.maskedFill(this.#handle, mask.#handle, value)); }
  nonzero(): Tensor { return new Tensor(native.nonzero(this.#handle)); }
  split(splitSize: number | number[], dim = 0): Tensor[] {
    const hs: Handle[] = Array.isArray(splitSize) ? native.splitWithSizes(this.#handle, splitSize, dim) : native.split(this.#handle, splitSize, dim);
    return hs.map((h) => new Tensor(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] { return (native.chunk(this.#handle, chunks, dim)).map((h) => new Tensor(h)); }

  // ---- arithmetic ---------------------------------------------------------------------------

  add(other: TensorOrScalar, alpha?: number): Tensor { return this.#binary(other, native.add, native.addScalar, alpha); }
  sub(other: TensorOrScalar, alpha?: number): Tensor { return this.#binary(other, native.sub, native.subScalar, alpha); }
  /** other - this */
  rsub(other: Scalar): Tensor { return new Tensor(native.rsubScalar(this.#handle, other)); }
  mul(other: TensorOrScalar): Tensor { return this.#binary(other, native.mul, native.mulScalar); }
  div(other: TensorOrScalar): Tensor { return this.#binary(other, native.div, native.divScalar); }
  pow(exponent: TensorOrScalar): Tensor { return this.#binary(exponent, native.pow, native.powScalar); }
  maximum(other: Tensor): Tensor { return new Tensor(native.maximum(this.#handle, other.#handle)); }
  minimum(other: Tensor): Tensor { return new Tensor(native.minimum(this.#handle, other.#handle)); }
  matmul(other: Tensor): Tensor { return new Tensor(native.matmul(this.#handle, other.#handle)); }
  mm(other: Tensor): Tensor { return new Tensor(native.mm(this.#handle, other.#handle)); }
  bmm(other: Tensor): Tensor { return new Tensor(native.bmm(this.#handle, other.#handle)); }
  neg(): Tensor { return this.#unary(native.neg); }
  abs(): Tensor { return this.#unary(native.abs); }
  exp(): Tensor { return this.#unary(native.exp); }
  log(): Tensor { return this.#unary(native.log); }
  sqrt(): Tensor { return this.#unary(native.sqrt); }
  rsqrt(): Tensor { return this.#unary(native.rsqrt); }
  sign(): Tensor { return this.#unary(native.sign); }
  floor(): Tensor { return this.#unary(native.floor); }
  ceil(): Tensor { return this.#unary(native.ceil); }
  round(): Tensor { return this.#unary(native.round); }
  sin(): Tensor { return this.#unary(native.sin); }
  cos(): Tensor { return this.#unary(native.cos); }
  reciprocal(): Tensor { return this.#unary(native.reciprocal); }
  erfinv(): Tensor { return this.#unary(native.erfinv); }
  relu(): Tensor { return this.#unary(native.relu); }
  sigmoid(): Tensor { return this.#unary(native.sigmoid); }
  tanh(): Tensor { return this.#unary(native.tanh); }
  softmax(dim: number): Tensor { return new Tensor(native.softmax(this.#handle, dim)); }
  logSoftmax(dim: number): Tensor { return new Tensor(native.logSoftmax(this.#handle, dim)); }
  clamp(min?: number, max?: number): Tensor {
    if (min === undefined && max === undefined) throw new TypeError('clamp: give at least one of min and max');
    return new Tensor(native.clamp(this.#handle, min, max));
  }
  lerp(end: Tensor, weight: number): Tensor { return new Tensor(native.lerp(this.#handle, end.#handle, weight)); }
  logicalNot(): Tensor { return this.#unary(native.logicalNot); }
  logicalAnd(other: Tensor): Tensor { return new Tensor(native.logicalAnd(this.#handle, other.#handle)); }
  logicalOr(other: Tensor): Tensor { return new Tensor(native.logicalOr(this.#handle, other.#handle)); }
  isnan(): Tensor { return this.#unary(native.isnan); }
  isfinite(): Tensor { return this.#unary(native.isfinite); }

  // ---- comparisons --------------------------------------------------------------------------

  eq(other: TensorOrScalar): Tensor { return this.#binary(other, native.eq, native.eqScalar); }
  ne(other: TensorOrScalar): Tensor { return this.#binary(other, native.ne, native.neScalar); }
  lt(other: TensorOrScalar): Tensor { return this.#binary(other, native.lt, native.ltScalar); }
  le(other: TensorOrScalar): Tensor { return this.#binary(other, native.le, native.leScalar); }
  gt(other: TensorOrScalar): Tensor { return this.#binary(other, native.gt, native.gtScalar); }
  ge(other: TensorOrScalar): Tensor { return this.#binary(other, native.ge, native.geScalar); }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return native.allclose(this.#handle, other.#handle, rtol, atol); }
  /** Same shape and same elements. */
  equal(other: Tensor): boolean { return native.equal(this.#handle, other.#handle); }

  // ---- reductions ---------------------------------------------------------------------------

  sum(dim?: number | number[], keepdim = false, dtype?: DType): Tensor {
    return new Tensor(native.sum(this.#handle, dims(dim), keepdim, dtype === undefined ? undefined : dtypeCode(dtype)));
  }
  mean(dim?: number | number[], keepdim = false): Tensor { return new Tensor(native.mean(this.#handle, dims(dim), keepdim)); }
  /** The largest element, or with dim: [values, indices] along it. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.amax(this.#handle, undefined, false));
    const [v, i] = native.maxDim(this.#handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  /** The smallest element, or with dim: [values, indices] along it. */
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.amin(this.#handle, undefined, false));
    const [v, i] = native.minDim(this.#handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  amax(dim?: number | number[], keepdim = false): Tensor { return new Tensor(native.amax(this.#handle, dims(dim), keepdim)); }
  amin(dim?: number | number[], keepdim = false): Tensor { return new Tensor(native.amin(this.#handle, dims(dim), keepdim)); }
  argmax(dim?: number, keepdim = false): Tensor { return new Tensor(native.argmax(this.#handle, dim, keepdim)); }
  argmin(dim?: number, keepdim = false): Tensor { return new Tensor(native.argmin(this.#handle, dim, keepdim)); }
  /** Variance with Bessel's correction by default (correction = 1), as torch.var. */
  var(dim?: number | number[], keepdim = false, correction = 1): Tensor {
    return new Tensor(native.var(this.#handle, dims(dim), keepdim, correction));
  }
  std(dim?: number | number[], keepdim = false, correction = 1): Tensor {
    return new Tensor(native.std(this.#handle, dims(dim), keepdim, correction));
  }
  prod(dim?: number, keepdim = false): Tensor { return new Tensor(native.prod(this.#handle, dim, keepdim)); }
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor { return new Tensor(native.norm(this.#handle, p, dims(dim), keepdim)); }
  logsumexp(dim: number | number[], keepdim = false): Tensor { return new Tensor(native.logsumexp(this.#handle, dim, keepdim)); }
  cumsum(dim: number): Tensor { return new Tensor(native.cumsum(this.#handle, dim)); }
  all(): Tensor { return this.#unary(native.all); }
  any(): Tensor { return this.#unary(native.any); }
  /** [values, indices] of the k largest (or smallest) elements along dim. */
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [v, i] = native.topk(this.#handle, k, dim, largest, sorted);
    return [new Tensor(v), new Tensor(i)];
  }
  /** [values, indices] sorted along dim. */
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = native.sort(this.#handle, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  argsort(dim = -1, descending = false): Tensor { return new Tensor(native.argsort(this.#handle, dim, descending)); }

  // ---- in place (optimizers, initialisers); each returns this ---------------------------------

  add_(other: TensorOrScalar, alpha?: number): this {
    if (other instanceof Tensor) native.add_(this.#handle, other.#handle, alpha);
    else native.addScalar_(this.#handle, alpha === undefined ? other : Number(other) * alpha);
    return this;
  }
  sub_(other: Tensor, alpha?: number): this { native.sub_(this.#handle, other.#handle, alpha); return this; }
  mul_(other: TensorOrScalar): this {
    if (other instanceof Tensor) native.mul_(this.#handle, other.#handle);
    else native.mulScalar_(this.#handle, other);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (other instanceof Tensor) native.div_(this.#handle, other.#handle);
    else native.divScalar_(this.#handle, other);
    return this;
  }
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this { native.addcmul_(this.#handle, t1.#handle, t2.#handle, value); return this; }
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this { native.addcdiv_(this.#handle, t1.#handle, t2.#handle, value); return this; }
  lerp_(end: Tensor, weight: number): this { native.lerp_(this.#handle, end.#handle, weight); return this; }
  copy_(src: Tensor): this { native.copy_(this.#handle, src.#handle); return this; }
  zero_(): this { native.zero_(this.#handle); return this; }
  fill_(value: Scalar): this { native.fill_(this.#handle, value); return this; }
  clamp_(min?: number, max?: number): this { native.clamp_(this.#handle, min, max); return this; }
  sqrt_(): this { native.sqrt_(this.#handle); return this; }
  erfinv_(): this { native.erfinv_(this.#handle); return this; }
  maskedFill_(mask: Tensor, value: Scalar): this { native.maskedFill_(this.#handle, mask.#handle, value); return this; }
  relu_(): this { native.relu_(this.#handle); return this; }
  normal_(mean = 0, std = 1): this { native.normal_(this.#handle, mean, std); return this; }
  uniform_(from = 0, to = 1): this { native.uniform_(this.#handle, from, to); return this; }

  // ---- autograd -----------------------------------------------------------------------------

  get requiresGrad(): boolean { return native.requiresGrad(this.#handle); }
  set requiresGrad(value: boolean) { native.setRequiresGrad(this.#handle, value); }
  requiresGrad_(value = true): this { native.setRequiresGrad(this.#handle, value); return this; }
  get isLeaf(): boolean { return native.isLeaf(this.#handle); }
  /** The accumulated gradient (a new handle to it each read), or null. */
  get grad(): Tensor | null {
    const h = native.grad(this.#handle);
    return h === null ? null : new Tensor(h);
  }
  set grad(g: Tensor | null) { native.setGrad(this.#handle, g === null ? undefined : g.#handle); }
  /** The name of the autograd node that made this tensor, e.g. 'AddmmBackward0', or null for leaves. */
  get gradFn(): string | null { return native.gradFn(this.#handle); }
  detach(): Tensor { return new Tensor(native.detach(this.#handle)); }
  /** Backpropagates from this tensor; a non-scalar needs the gradient of the output. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    native.backward(this.#handle, gradient === undefined ? undefined : gradient.#handle, opts.retainGraph ?? false);
  }

  // ---- helpers ------------------------------------------------------------------------------

  #unary(op: UnaryOp): Tensor {
    return new Tensor(op(this.#handle));
  }
  #binary(other: TensorOrScalar, tensorOp: BinaryOp, scalarOp: ScalarOp, alpha?: number): Tensor {
    if (other instanceof Tensor) return new Tensor(tensorOp(this.#handle, other.#handle, alpha));
    if (typeof other !== 'number' && typeof other !== 'boolean') {
      throw new TypeError(`${tensorOp.name}: expected a Tensor or a number, got ${other === null ? 'null' : typeof other}`);
    }
    return new Tensor(scalarOp(this.#handle, alpha === undefined ? other : Number(other) * alpha));
  }
}

// `to` and `contiguous` return the same native tensor when nothing changes; PyTorch returns self
// then, and so do we, so callers can compare identity and need not dispose twice.
function wrapMaybeSame(self: Tensor, h: Handle): Tensor {
  if (native.sharesStorage(self.handle, h) && sameLayout(self, h)) {
    native.dispose(h);
    return self;
  }
  return new Tensor(h);
}

function sameLayout(self: Tensor, h: Handle): boolean {
  const a = self.strides;
  const b = native.strides(h);
  return native.dtype(self.handle) === native.dtype(h) && native.device(self.handle) === native.device(h) &&
    a.length === b.length && a.every((v, i) => v === b[i]);
}

setTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);

export function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

/** @internal A fresh native handle detached from t, for subclasses that adopt a tensor's data (Parameter). */
export function detachedHandle(t: Tensor): Handle {
  return native.detach(t.handle);
}

/**
 * Tensors by name, in order: a model's parameters and buffers under their dotted names (PyTorch's
 * state_dict), or a weights file's contents. A Map, so order and any key (even __proto__) are kept.
 */
export type StateDict = Map<string, Tensor>;
