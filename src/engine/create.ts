// Creating tensors: from JS data, from bytes, filled, ranged and random; and joining them.
import { native, type Handle } from './native.js';
import { BYTES_PER_ELEMENT, dtypeCode, dtypeOfTypedArray, type DType } from './dtype.js';
import { Tensor, type NestedArray } from './tensor.js';
import { defaultDevice } from './device.js';
import { formatElement, formatShape } from './format.js';

export interface CreateOptions {
  dtype?: DType;
  /** 'cpu' (default), 'cuda', 'cuda:1' */
  device?: string;
  requiresGrad?: boolean;
}

function made(h: Handle, opts: CreateOptions): Tensor {
  const t = new Tensor(h);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function checkShape(shape: number[], what: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${what}: shape must be an array of non-negative integers, got ${formatElement(shape)}`);
  const bad = shape.findIndex((d) => !Number.isSafeInteger(d) || d < 0);
  if (bad >= 0) {
    throw new TypeError(`${what}: shape must be an array of non-negative integers, but element ${bad} is ${formatElement(shape[bad])} in ${formatShape(shape)}`);
  }
  return shape;
}

const code = (opts: CreateOptions, fallback: DType = 'float32'): number => dtypeCode(opts.dtype ?? fallback);
/** The device asked for, else withDevice's. */
const dev = (opts: CreateOptions): string | undefined => opts.device ?? defaultDevice();

/**
 * A tensor from JS data: a number, a boolean, nested arrays, or a typed array (with opts.shape).
 * As in PyTorch, integers give int64, booleans bool, and anything else float32.
 */
export function tensor(data: NestedArray | ArrayBufferView, opts: CreateOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const dtype = dtypeOfTypedArray(data);
    const shape = checkShape(opts.shape ?? [data.byteLength / BYTES_PER_ELEMENT[dtype]], 'tensor');
    const t = fromBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), shape, dtype);
    return finish(t, opts);
  }
  const shape: number[] = [];
  for (let v: NestedArray = data; Array.isArray(v); v = v[0]) shape.push(v.length);
  const flat: (number | boolean)[] = [];
  flatten(data, shape, 0, flat);
  const inferred: DType = flat.every((v) => typeof v === 'boolean') && flat.length > 0 ? 'bool'
    : flat.every((v) => Number.isInteger(v)) && flat.length > 0 ? 'int64' : 'float32';
  // float16/bfloat16 have no JS array: encode as float32, then convert in finish().
  const wanted = opts.dtype ?? inferred;
  const base: DType = wanted === 'float16' || wanted === 'bfloat16' ? 'float32' : wanted;
  const t = fromBytes(encode(flat, base), shape, base);
  return finish(t, opts);
}

function finish(t: Tensor, opts: CreateOptions): Tensor {
  let out = t;
  const device = dev(opts);
  if ((opts.dtype && opts.dtype !== t.dtype) || (device && device !== 'cpu')) {
    out = t.to({ dtype: opts.dtype, device });
    if (out !== t) t.dispose();
  }
  if (opts.requiresGrad) out.requiresGrad = true;
  return out;
}

function flatten(v: NestedArray, shape: number[], depth: number, out: (number | boolean)[]): void {
  if (depth === shape.length) {
    if (typeof v !== 'number' && typeof v !== 'boolean') throw new TypeError(`tensor: ragged nested array (a list where a number was expected at depth ${depth})`);
    out.push(v);
    return;
  }
  if (!Array.isArray(v) || v.length !== shape[depth]) {
    throw new TypeError(`tensor: ragged nested array: expected a list of ${shape[depth]} at depth ${depth}, got ${Array.isArray(v) ? `a list of ${v.length}` : typeof v}`);
  }
  for (const x of v) flatten(x, shape, depth + 1, out);
}

function encode(flat: (number | boolean)[], d: DType): Uint8Array {
  const nums = flat.map(Number);
  switch (d) {
    case 'float64': return new Uint8Array(Float64Array.from(nums).buffer);
    case 'int64': return new Uint8Array(BigInt64Array.from(nums, (x) => BigInt(Math.trunc(x))).buffer);
    case 'int32': return new Uint8Array(Int32Array.from(nums).buffer);
    case 'int16': return new Uint8Array(Int16Array.from(nums).buffer);
    case 'int8': return new Uint8Array(Int8Array.from(nums).buffer);
    case 'uint8': case 'bool': return Uint8Array.from(nums);
    default: return new Uint8Array(Float32Array.from(nums).buffer);
  }
}

/** A tensor that copies the given little-endian bytes. */
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  checkShape(shape, 'fromBytes');
  const code = dtypeCode(dtype); // an unknown dtype is a TypeError, not a byte-count mismatch
  const want = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength !== want) {
    throw new RangeError(`fromBytes: shape ${formatShape(shape)} of ${dtype} needs ${want} bytes, got ${bytes.byteLength}`);
  }
  return new Tensor(native.fromBuffer(bytes, shape, code));
}

export const empty = (shape: number[], opts: CreateOptions = {}): Tensor => made(native.empty(checkShape(shape, 'empty'), code(opts), dev(opts)), opts);
export const zeros = (shape: number[], opts: CreateOptions = {}): Tensor => made(native.zeros(checkShape(shape, 'zeros'), code(opts), dev(opts)), opts);
export const ones = (shape: number[], opts: CreateOptions = {}): Tensor => made(native.ones(checkShape(shape, 'ones'), code(opts), dev(opts)), opts);
export const full = (shape: number[], value: number | boolean, opts: CreateOptions = {}): Tensor =>
  made(native.full(checkShape(shape, 'full'), value, code(opts, typeof value === 'boolean' ? 'bool' : 'float32'), dev(opts)), opts);
export const zerosLike = (t: Tensor, opts: CreateOptions = {}): Tensor => zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
export const onesLike = (t: Tensor, opts: CreateOptions = {}): Tensor => ones(t.shape, { dtype: t.dtype, device: t.device, ...opts });
export const fullLike = (t: Tensor, value: number, opts: CreateOptions = {}): Tensor => full(t.shape, value, { dtype: t.dtype, device: t.device, ...opts });
export const eye = (n: number, opts: CreateOptions = {}): Tensor => made(native.eye(n, code(opts), dev(opts)), opts);

/** Values in [start, end) by step: arange(5), arange(1, 10, 2). Integers give int64, as in PyTorch. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const fallback: DType = [s, e, step].every(Number.isInteger) ? 'int64' : 'float32';
  return made(native.arange(s, e, step, code(opts, fallback), dev(opts)), opts);
}
export const linspace = (start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor =>
  made(native.linspace(start, end, steps, code(opts), dev(opts)), opts);

// Random tensors draw from libtorch's default generator: manualSeed(s) then randn(...) gives
// the same numbers as torch.manual_seed(s); torch.randn(...) in PyTorch on the CPU.
export const rand = (shape: number[], opts: CreateOptions = {}): Tensor => made(native.rand(checkShape(shape, 'rand'), code(opts), dev(opts)), opts);
export const randn = (shape: number[], opts: CreateOptions = {}): Tensor => made(native.randn(checkShape(shape, 'randn'), code(opts), dev(opts)), opts);
export const randint = (low: number, high: number, shape: number[], opts: CreateOptions = {}): Tensor =>
  made(native.randint(low, high, checkShape(shape, 'randint'), code(opts, 'int64'), dev(opts)), opts);
export const randperm = (n: number, opts: CreateOptions = {}): Tensor => made(native.randperm(n, code(opts, 'int64'), dev(opts)), opts);
/** Draws 0/1 with probability p, or with the probabilities in `probs` when p is omitted. */
export const bernoulli = (probs: Tensor, p?: number): Tensor => new Tensor(native.bernoulli(probs.handle, p));
export const multinomial = (probs: Tensor, numSamples: number, replacement = false): Tensor =>
  new Tensor(native.multinomial(probs.handle, numSamples, replacement));

export const cat = (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.cat(tensors.map((t) => t.handle), dim));
export const stack = (tensors: Tensor[], dim = 0): Tensor => new Tensor(native.stack(tensors.map((t) => t.handle), dim));
export const where = (condition: Tensor, a: Tensor, b: Tensor): Tensor => new Tensor(native.where(condition.handle, a.handle, b.handle));
export const oneHot = (indices: Tensor, numClasses = -1): Tensor => new Tensor(native.oneHot(indices.handle, numClasses));
