// Reads PyTorch checkpoints (.pth/.pt: the zip format torch.save writes since 1.6) without running
// anything from the file, like torch.load(weights_only=True). data.pkl is unpickled through an
// allow-list of the few torch globals a state dict needs; storages are zip entries, read once and
// cut into tensors after every view has been checked to lie inside its storage.
import { readSync, closeSync } from 'node:fs';
import { openInputFile } from './files.js';
import { BYTES_PER_ELEMENT, empty, type DType, type StateDict, type Tensor } from '../engine/index.js';
import { PyCallable, PyDict, PyObject, PyTuple, describe, unpickle, type PyValue } from './pickle.js';
import { ZipReader, type ZipEntry } from './zip.js';

export interface PthOptions {
  /** Take the state dict under this top-level key (e.g. 'model', 'ema'). */
  key?: string;
  /** Check each entry's CRC-32 (default true). */
  verifyCrc?: boolean;
  /**
   * The most bytes the returned tensors may take together (default: 8x the file size + 256 MiB).
   * Saved expand()-style views (stride 0) can legitimately be larger than the file; hostile ones
   * could ask for terabytes.
   */
  maxBytes?: number;
}

/** A tensor as contiguous little-endian bytes: what readPthRaw returns, with no engine involved. */
export interface RawTensor {
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** The keys under which training checkpoints commonly keep the model's state dict, in order. */
export const STATE_DICT_KEYS: readonly string[] = ['state_dict', 'model', 'model_state_dict'];

/** Loads a state dict as engine tensors (contiguous, CPU). The caller owns and disposes them. */
export function readPth(path: string, opts: PthOptions = {}): StateDict {
  const made: Tensor[] = [];
  try {
    return loadPth(path, opts, (shape, dtype) => {
      const t = empty(shape, { dtype });
      made.push(t);
      return { value: t, bytes: t.bytesView() };
    });
  } catch (e) {
    for (const t of made) t.dispose(); // a failed load leaks nothing
    throw e;
  }
}

/** Loads a state dict as raw bytes (no native memory). */
export function readPthRaw(path: string, opts: PthOptions = {}): Map<string, RawTensor> {
  return loadPth(path, opts, (shape, dtype) => {
    const data = new Uint8Array(numel(shape) * BYTES_PER_ELEMENT[dtype]);
    return { value: { dtype, shape, data }, bytes: data };
  });
}

/** Allocates the destination of one tensor: bytes to fill, and the value to return. */
type Alloc<T> = (shape: number[], dtype: DType) => { value: T; bytes: Uint8Array };

function loadPth<T>(path: string, opts: PthOptions, alloc: Alloc<T>): Map<string, T> {
  try {
    return loadPthUnnamed(path, opts, alloc);
  } catch (e) {
    // Our own errors name the file already; fs and engine errors (EISDIR, out of memory) may not.
    if (e instanceof Error && !e.message.includes(path)) throw new Error(`${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

function loadPthUnnamed<T>(path: string, opts: PthOptions, alloc: Alloc<T>): Map<string, T> {
  refuseLegacy(path);
  const zip = ZipReader.open(path, { verifyCrc: opts.verifyCrc });
  try {
    const prefix = archivePrefix(zip);
    checkByteOrder(zip, prefix);
    const top = unpickle(zip.read(`${prefix}data.pkl`, MAX_PICKLE_BYTES), {
      source: `${path} (${prefix}data.pkl)`,
      findGlobal: allowedGlobal,
      refusalReason: 'only state dicts can be read',
      persistentLoad: loadStorage,
    });
    const dict = selectStateDict(path, top, opts.key);
    const maxBytes = opts.maxBytes ?? 8 * zip.size + (256 << 20);
    return materialize(path, zip, prefix, dict, maxBytes, alloc);
  } finally {
    zip.close();
  }
}

// ---- format detection ------------------------------------------------------------------------

// torch < 1.6 starts with a pickled magic number: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c.
/**
 * The most bytes data.pkl may inflate to: a state dict's pickle holds names and shapes, about
 * 100 bytes a tensor, so 64 MiB is room for 600,000 tensors.
 */
const MAX_PICKLE_BYTES = 64 << 20;

const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

function refuseLegacy(path: string): void {
  const head = new Uint8Array(LEGACY_MAGIC.length);
  const { fd } = openInputFile(path, { what: 'PyTorch checkpoint' });
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n === head.length && head.every((b, i) => b === LEGACY_MAGIC[i])) {
    throw new Error(
      `${path}: legacy .pth format (torch < 1.6) is not supported; re-save with torch.save(..., _use_new_zipfile_serialization=True)`,
    );
  }
}

/** torch puts every record under one folder (`<archive>/`); data.pkl names the archive. */
function archivePrefix(zip: ZipReader): string {
  const pkls = zip.entries.map((e) => e.name).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 1) {
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    if (zip.has(`${prefix}constants.pkl`) || zip.entries.some((e) => e.name.startsWith(`${prefix}code/`))) {
      throw new Error(`${zip.name}: this is a TorchScript archive (torch.jit.save); load it in Python and torch.save(model.state_dict()) instead`);
    }
    return prefix;
  }
  const names = zip.entries.slice(0, 8).map((e) => e.name).join(', ');
  const what = pkls.length ? `${pkls.length} data.pkl records` : 'no <archive>/data.pkl record';
  throw new Error(`${zip.name}: not a PyTorch checkpoint: ${what} (entries: ${names}${zip.entries.length > 8 ? ', ...' : ''})`);
}

/** torch >= 2.1 records the writer's byte order; older files are little-endian, as is every host we run on. */
function checkByteOrder(zip: ZipReader, prefix: string): void {
  if (!zip.has(`${prefix}byteorder`)) return;
  const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`, 16)).trim();
  if (order !== 'little') throw new Error(`${zip.name}: tensors were saved ${order}-endian; only little-endian checkpoints are supported`);
}

// ---- the allow-list ----------------------------------------------------------------------------

/** A storage class named in a persistent id (torch.FloatStorage, ...): a dtype, never called. */
class StorageType extends PyObject {
  constructor(readonly qualname: string, readonly dtype: DType) {
    super();
  }
  describe(): string {
    return this.qualname;
  }
}

/** One persistent id: `numel` elements of `dtype` in zip entry data/<key>. */
class StorageRef extends PyObject {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number) {
    super();
  }
  describe(): string {
    return `storage '${this.key}' (${this.numel} x ${this.dtype})`;
  }
}

/** A tensor view over a storage, checked at construction; materialized later. */
class TensorRef extends PyObject {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
  describe(): string {
    return `tensor [${this.shape.join(', ')}] ${this.storage.dtype}`;
  }
}

/** torch.float32 and friends: values only (AMP scalers and some configs pickle them). */
class TorchDType extends PyObject {
  constructor(readonly qualname: string) {
    super();
  }
  describe(): string {
    return this.qualname;
  }
}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const TORCH_DTYPE_NAMES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int64', 'long', 'int32', 'int', 'int16', 'short', 'int8', 'uint8', 'bool',
]);

const ALLOWED = new Map<string, PyValue>();
for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) ALLOWED.set(`torch.${name}`, new StorageType(`torch.${name}`, dtype));
for (const q of ['torch.UntypedStorage', 'torch.storage.UntypedStorage', 'torch.storage._UntypedStorage']) {
  ALLOWED.set(q, new StorageType(q, 'uint8')); // untyped storages count bytes
}
for (const n of TORCH_DTYPE_NAMES) ALLOWED.set(`torch.${n}`, new TorchDType(`torch.${n}`));
ALLOWED.set('collections.OrderedDict', new PyCallable('collections.OrderedDict', orderedDict));
ALLOWED.set('torch._utils._rebuild_tensor_v2', new PyCallable('torch._utils._rebuild_tensor_v2', rebuildTensor));
ALLOWED.set('torch._utils._rebuild_parameter', new PyCallable('torch._utils._rebuild_parameter', rebuildParameter));
ALLOWED.set('torch._utils._rebuild_parameter_with_state', new PyCallable('torch._utils._rebuild_parameter_with_state', rebuildParameter));
ALLOWED.set('torch.device', new PyCallable('torch.device', torchDevice));
ALLOWED.set('torch.Size', new PyCallable('torch.Size', torchSize));
// Protocol 2 pickles Python bytes as _codecs.encode(str, 'latin1'): pure data, no side effects.
ALLOWED.set('_codecs.encode', new PyCallable('_codecs.encode', codecsEncode));

function allowedGlobal(module: string, name: string): PyValue | undefined {
  const v = ALLOWED.get(`${module}.${name}`);
  if (v === undefined && module === 'torch' && name.endsWith('Storage')) {
    // A real tensor type we cannot hold (complex, float8, quantized...): say so, not "refusing".
    throw new Error(`unsupported tensor storage torch.${name}: convkit reads ${Object.keys(STORAGE_DTYPES).join(', ')}`);
  }
  return v;
}

function orderedDict(args: readonly PyValue[]): PyValue {
  const d = new PyDict();
  if (args.length === 0) return d;
  const items = args[0];
  if (args.length > 1 || !Array.isArray(items)) throw new Error('collections.OrderedDict: expected no arguments or a list of pairs');
  for (const it of items) {
    const pair = it instanceof PyTuple ? it.items : Array.isArray(it) ? it : [];
    if (pair.length !== 2 || !isKey(pair[0])) throw new Error('collections.OrderedDict: items must be (key, value) pairs');
    d.map.set(pair[0], pair[1]);
  }
  return d;
}

function isKey(v: PyValue): v is string | number | bigint | boolean | null {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v);
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(args: readonly PyValue[]): PyValue {
  if (args.length < 6 || args.length > 7) throw new Error(`_rebuild_tensor_v2: expected 6 or 7 arguments, got ${args.length}`);
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new Error(`_rebuild_tensor_v2: expected a storage, got ${describe(storage)}`);
  const shape = intList(size, 'size');
  const strides = intList(stride, 'stride');
  const off = nonNegInt(offset, 'storage_offset');
  if (strides.length !== shape.length) throw new Error(`_rebuild_tensor_v2: size [${shape}] and stride [${strides}] differ in length`);
  checkView(storage, off, shape, strides);
  return new TensorRef(storage, off, shape, strides);
}

/** _rebuild_parameter(data, requires_grad, backward_hooks[, state]): a state dict wants just the data. */
function rebuildParameter(args: readonly PyValue[]): PyValue {
  if (args.length < 3 || args.length > 4 || !(args[0] instanceof TensorRef)) {
    throw new Error(`_rebuild_parameter: expected (tensor, requires_grad, hooks), got ${args.length} arguments`);
  }
  return args[0];
}

function torchDevice(args: readonly PyValue[]): PyValue {
  const [type, index] = args;
  if (typeof type !== 'string' || args.length > 2) throw new Error('torch.device: expected a device string');
  return typeof index === 'number' ? `${type}:${index}` : type;
}

function torchSize(args: readonly PyValue[]): PyValue {
  const dims = args.length === 0 ? [] : intList(args[0], 'torch.Size');
  return new PyTuple(dims);
}

function codecsEncode(args: readonly PyValue[]): PyValue {
  const [s, enc] = args;
  if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new Error("_codecs.encode: only (str, 'latin1') is supported");
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new Error('_codecs.encode: character out of latin1 range');
    out[i] = c;
  }
  return out;
}

function nonNegInt(v: PyValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${what} must be a non-negative integer, got ${describe(v)}`);
  return v;
}

function intList(v: PyValue | undefined, what: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (!items) throw new Error(`${what} must be a tuple of integers, got ${describe(v)}`);
  if (items.length > 64) throw new Error(`${what} has ${items.length} dimensions; at most 64 are supported`);
  return items.map((x) => nonNegInt(x, what));
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The view must only touch elements [0, storage.numel): no out-of-bounds reads, ever. */
function checkView(s: StorageRef, offset: number, shape: number[], stride: number[]): void {
  const n = numel(shape);
  if (!Number.isSafeInteger(n)) throw new Error(`tensor of size [${shape}] is too large`);
  if (n === 0) {
    if (offset > s.numel) throw new Error(`storage_offset ${offset} is past the end of ${s.describe()}`);
    return;
  }
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (!Number.isSafeInteger(last) || last >= s.numel) {
    throw new Error(`a view with offset ${offset}, size [${shape}] and stride [${stride}] reads element ${last}, past the end of ${s.describe()}`);
  }
}

/** BINPERSID: ('storage', storage_type, key, location, numel) */
function loadStorage(pid: PyValue): PyValue {
  const items = pid instanceof PyTuple ? pid.items : [];
  const [tag, type, key, location, count] = items;
  if (items.length !== 5 || tag !== 'storage') throw new Error(`unexpected persistent id ${describe(pid)}: expected ('storage', type, key, location, numel)`);
  if (!(type instanceof StorageType)) throw new Error(`persistent id names ${describe(type)}, not a storage type`);
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) throw new Error(`bad storage key ${describe(key)}`);
  if (typeof location !== 'string') throw new Error(`bad storage location ${describe(location)}`);
  // Storages load to the CPU wherever they were saved, like map_location='cpu'.
  return new StorageRef(key, type.dtype, nonNegInt(count, 'storage numel'));
}

// ---- choosing the state dict --------------------------------------------------------------------

/** The dict itself when every key is a string and every value a tensor. */
function asStateDict(v: PyValue | undefined): PyDict | undefined {
  if (!(v instanceof PyDict)) return undefined;
  for (const [k, t] of v.map) if (typeof k !== 'string' || !(t instanceof TensorRef)) return undefined;
  return v;
}

function keyList(d: PyDict): string {
  const keys = [...d.map.keys()].map((k) => String(k));
  return keys.length > 20 ? `${keys.slice(0, 20).join(', ')}, ... (${keys.length} in all)` : keys.join(', ');
}

function selectStateDict(path: string, top: PyValue, key: string | undefined): PyDict {
  if (!(top instanceof PyDict)) throw new Error(`${path}: the checkpoint holds a ${describe(top)}, not a dict of tensors`);
  if (key !== undefined) return pickKey(path, top, key);
  const found = [top, ...STATE_DICT_KEYS.map((k) => top.get(k))].map(asStateDict).find((d) => d !== undefined);
  if (found) return found;
  throw new Error(
    `${path}: no state dict found: the top-level keys are [${keyList(top)}] and none of ${STATE_DICT_KEYS.join(', ')} ` +
      'holds a dict of tensors; choose one with readPth(path, { key })',
  );
}

function pickKey(path: string, top: PyDict, key: string): PyDict {
  const v = top.get(key);
  if (v === undefined) throw new Error(`${path}: no top-level key '${key}' (keys: ${keyList(top)})`);
  if (!(v instanceof PyDict)) throw new Error(`${path}: '${key}' holds a ${describe(v)}, not a dict of tensors`);
  for (const [k, t] of v.map) {
    if (typeof k !== 'string' || !(t instanceof TensorRef)) throw new Error(`${path}: '${key}' is not a dict of tensors: entry ${String(k)} is a ${describe(t)}`);
  }
  return v;
}

// ---- reading the storages -------------------------------------------------------------------------

function materialize<T>(path: string, zip: ZipReader, prefix: string, dict: PyDict, maxBytes: number, alloc: Alloc<T>): Map<string, T> {
  const byStorage = new Map<string, [string, TensorRef][]>();
  let total = 0;
  for (const [name, t] of dict.map as Map<string, TensorRef>) {
    total += numel(t.shape) * BYTES_PER_ELEMENT[t.storage.dtype];
    const group = byStorage.get(t.storage.key) ?? [];
    group.push([name, t]);
    byStorage.set(t.storage.key, group);
  }
  if (total > maxBytes) throw new Error(`${path}: the tensors would take ${total} bytes, more than the limit of ${maxBytes} bytes (PthOptions.maxBytes)`);
  const made = new Map<string, T>();
  // One storage in memory at a time: peak memory is the result plus the largest storage.
  for (const [key, group] of byStorage) {
    const { entry, need } = storageEntry(path, zip, prefix, key, group, maxBytes);
    // a deflated storage may inflate to no more than its tensors declare
    const bytes = group.some(([, t]) => numel(t.shape) > 0) ? zip.readEntry(entry, need) : new Uint8Array(0);
    for (const [name, t] of group) {
      const { value, bytes: dst } = alloc(t.shape, t.storage.dtype);
      gather(bytes, t, dst);
      made.set(name, value);
    }
  }
  // in the state dict's order
  return new Map([...(dict.map.keys() as IterableIterator<string>)].map((name): [string, T] => [name, made.get(name)!]));
}

/** The zip entry of a storage, and the bytes its tensors say it holds (at most maxBytes). */
function storageEntry(
  path: string, zip: ZipReader, prefix: string, key: string, group: [string, TensorRef][], maxBytes: number,
): { entry: ZipEntry; need: number } {
  const entry = zip.entry(`${prefix}data/${key}`);
  const [firstName] = group[0];
  if (!entry) throw new Error(`${path}: tensor '${firstName}' needs storage ${prefix}data/${key}, which the archive lacks`);
  let most = 0;
  for (const [name, t] of group) {
    const need = t.storage.numel * BYTES_PER_ELEMENT[t.storage.dtype];
    if (entry.size < need) {
      throw new Error(`${path}: tensor '${name}': storage ${prefix}data/${key} holds ${entry.size} bytes but ${t.storage.describe()} needs ${need}`);
    }
    if (need > maxBytes) {
      throw new Error(`${path}: tensor '${name}': ${t.storage.describe()} takes ${need} bytes, more than the limit of ${maxBytes} bytes (PthOptions.maxBytes)`);
    }
    most = Math.max(most, need);
  }
  return { entry, need: most };
}

/** Copies the view (offset, shape, stride) out of the storage bytes into a contiguous buffer. */
function gather(src: Uint8Array, t: TensorRef, dst: Uint8Array): void {
  const es = BYTES_PER_ELEMENT[t.storage.dtype];
  const n = numel(t.shape);
  if (n === 0) return;
  if (isContiguous(t.shape, t.stride)) {
    dst.set(src.subarray(t.offset * es, (t.offset + n) * es));
    return;
  }
  // Walk the index odometer; copy the innermost dimension as one run when it is dense.
  const nd = t.shape.length;
  const inner = t.shape[nd - 1];
  const innerStride = t.stride[nd - 1];
  const rows = n / inner;
  const idx = new Array<number>(nd - 1).fill(0);
  let base = t.offset;
  let o = 0;
  for (let r = 0; r < rows; r++) {
    if (innerStride === 1) {
      dst.set(src.subarray(base * es, (base + inner) * es), o);
      o += inner * es;
    } else {
      for (let j = 0, p = base * es; j < inner; j++, p += innerStride * es) for (let b = 0; b < es; b++) dst[o++] = src[p + b];
    }
    for (let d = nd - 2; d >= 0; d--) {
      base += t.stride[d];
      if (++idx[d] < t.shape[d]) break;
      base -= t.stride[d] * t.shape[d];
      idx[d] = 0;
    }
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}
