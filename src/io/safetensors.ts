// The safetensors format (https://github.com/huggingface/safetensors), read and written exactly
// per its spec:
//
//   [8 bytes: N, u64 little-endian][N bytes: UTF-8 JSON header, may end in spaces][byte buffer]
//
//   header = {"__metadata__"?: {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//             "data_offsets": [begin, end]}, ...}, offsets relative to the byte buffer.
//
// The header is untrusted input: every field is validated before any allocation or read is
// sized from it, and the tensors must tile the byte buffer exactly (no overlap, no gap, no
// trailing bytes), as the reference implementation requires. Tensors are read straight from
// the file into their own memory, so a checkpoint is never held twice.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { empty } from '../engine/index.js';
import { formatShape } from '../engine/format.js';
import { writeAll, writeAtomic } from './atomic.js';
import { openInputFile, readAt } from './files.js';
import { parseJson } from './json.js';
import type { DType, StateDict, Tensor } from '../engine/index.js';

/** The dtypes of the safetensors spec. */
export type SafetensorsDType =
  | 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'I32' | 'U32' | 'I64' | 'U64'
  | 'F16' | 'BF16' | 'F32' | 'F64' | 'F8_E4M3' | 'F8_E5M2';

/** The floating dtypes a file's floating tensors can be converted to on load. */
export type FloatDType = 'float32' | 'float64' | 'float16' | 'bfloat16';

/** One tensor's entry in a validated header. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the byte buffer. */
  dataOffsets: [number, number];
}

/** A validated header: everything about a file except its tensor data. */
export interface SafetensorsHeader {
  /** N, the JSON header's length in bytes (padding included). */
  headerLength: number;
  /** Absolute file offset of the byte buffer: 8 + N. */
  dataStart: number;
  /** Size of the byte buffer in bytes. */
  bufferLength: number;
  /** Tensors in the order their bytes lie in the buffer. */
  tensors: SafetensorsTensorInfo[];
  metadata?: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /** Convert every floating tensor (F16, BF16, F32, F64) to this dtype; others keep theirs. */
  dtype?: FloatDType;
}

/** Every error this module throws: names the file and, where one is involved, the tensor. */
export class SafetensorsError extends Error {
  readonly file: string;
  readonly tensor: string | undefined;
  constructor(file: string, message: string, tensor?: string, options?: { cause?: unknown }) {
    const where = tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `;
    super(`safetensors ${file}: ${where}${message}`, options);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
  }
}

// The reference implementation's limit; it keeps a hostile header from exhausting memory.
export const MAX_HEADER_LENGTH = 100_000_000;
// A valid header nests 3 deep ({"name": {"shape": [...]}}); deeper is hostile.
const MAX_HEADER_DEPTH = 8;

interface DTypeInfo {
  size: number;
  /** The engine dtype it loads as; undefined where libtorch (1.13) has no such dtype. */
  engine?: DType;
  floating: boolean;
}

// U16/U32/U64 have no libtorch dtype: they are widened on load (U16 -> int32, U32 -> int64,
// U64 -> int64 when every value fits, else an error naming the tensor), losslessly.
// F8 has no libtorch 1.13 dtype either: those headers parse, but loading such a tensor is an error.
const DTYPES: Readonly<Record<SafetensorsDType, DTypeInfo>> = {
  BOOL: { size: 1, engine: 'bool', floating: false },
  U8: { size: 1, engine: 'uint8', floating: false },
  I8: { size: 1, engine: 'int8', floating: false },
  I16: { size: 2, engine: 'int16', floating: false },
  U16: { size: 2, engine: 'int32', floating: false },
  I32: { size: 4, engine: 'int32', floating: false },
  U32: { size: 4, engine: 'int64', floating: false },
  I64: { size: 8, engine: 'int64', floating: false },
  U64: { size: 8, engine: 'int64', floating: false },
  F16: { size: 2, engine: 'float16', floating: true },
  BF16: { size: 2, engine: 'bfloat16', floating: true },
  F32: { size: 4, engine: 'float32', floating: true },
  F64: { size: 8, engine: 'float64', floating: true },
  F8_E4M3: { size: 1, floating: true },
  F8_E5M2: { size: 1, floating: true },
};

const ENGINE_TO_SAFETENSORS: Readonly<Record<DType, SafetensorsDType>> = {
  bool: 'BOOL',
  uint8: 'U8',
  int8: 'I8',
  int16: 'I16',
  int32: 'I32',
  int64: 'I64',
  float16: 'F16',
  bfloat16: 'BF16',
  float32: 'F32',
  float64: 'F64',
};

const FLOAT_DTYPES: readonly string[] = ['float32', 'float64', 'float16', 'bfloat16'];
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';
const ENTRY_FIELDS = '{"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}';

/** Byte size of one element of a safetensors dtype. */
export function safetensorsDTypeSize(dtype: SafetensorsDType): number {
  return DTYPES[dtype].size;
}

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array (${truncate(JSON.stringify(v))})`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${truncate(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---------------------------------------------------------------------------------------------
// Header: pure decoding and validation

/**
 * Decodes and validates header JSON bytes (the N bytes after the length prefix) against a byte
 * buffer of `bufferLength` bytes. Pure: `file` only names the source in errors.
 */
export function decodeSafetensorsHeader(
  file: string,
  json: Uint8Array,
  bufferLength: number,
): SafetensorsHeader {
  const root = parseJsonObject(file, json);
  let metadata: Record<string, string> | undefined;
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (name === '__metadata__') metadata = validateMetadata(file, value);
    else tensors.push(validateEntry(file, name, value, bufferLength));
  }
  checkTiling(file, tensors, bufferLength);
  const headerLength = json.byteLength;
  const header: SafetensorsHeader = { headerLength, dataStart: 8 + headerLength, bufferLength, tensors };
  if (metadata !== undefined) header.metadata = metadata;
  return header;
}

function parseJsonObject(file: string, json: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    throw new SafetensorsError(file, `the ${json.byteLength}-byte header is not valid UTF-8`);
  }
  let root: unknown;
  try {
    root = parseJson(text, MAX_HEADER_DEPTH);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new SafetensorsError(file, `the header is not valid JSON (${why}); it starts with ${truncate(JSON.stringify(text))}`);
  }
  if (!isPlainObject(root)) {
    throw new SafetensorsError(file, `the header must be a JSON object, found ${describe(root)}`);
  }
  return root;
}

function validateMetadata(file: string, value: unknown): Record<string, string> | undefined {
  // The reference reader models __metadata__ as Option<HashMap<String, String>>: null is "none".
  if (value === null) return undefined;
  if (!isPlainObject(value)) {
    throw new SafetensorsError(file, `"__metadata__" must be an object of strings, found ${describe(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(file, `"__metadata__" value for key ${JSON.stringify(k)} must be a string, found ${describe(v)}`);
    }
    defineKey(out, k, v);
  }
  return out;
}

function validateEntry(file: string, name: string, value: unknown, bufferLength: number): SafetensorsTensorInfo {
  if (!isPlainObject(value)) {
    throw new SafetensorsError(file, `entry must be an object ${ENTRY_FIELDS}, found ${describe(value)}`, name);
  }
  // Unknown extra fields are ignored, as the reference reader does: they cannot change the data.
  const dtype = validateDType(file, name, value.dtype);
  const shape = validateShape(file, name, value.shape);
  const dataOffsets = validateOffsets(file, name, value.data_offsets, bufferLength);
  checkByteSize(file, name, dtype, shape, dataOffsets);
  return { name, dtype, shape, dataOffsets };
}

function validateDType(file: string, name: string, v: unknown): SafetensorsDType {
  if (isDType(v)) return v;
  const known = Object.keys(DTYPES).join(', ');
  throw new SafetensorsError(file, `"dtype" must be one of ${known}; found ${describe(v)}`, name);
}

function validateShape(file: string, name: string, v: unknown): number[] {
  if (!Array.isArray(v)) {
    throw new SafetensorsError(file, `"shape" must be an array of non-negative integers, found ${describe(v)}`, name);
  }
  v.forEach((d: unknown, i) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        file,
        `"shape"[${i}] must be a non-negative safe integer, found ${describe(d)} in shape ${truncate(JSON.stringify(v))}`,
        name,
      );
    }
  });
  return v as number[];
}

function validateOffsets(file: string, name: string, v: unknown, bufferLength: number): [number, number] {
  const ok =
    Array.isArray(v) &&
    v.length === 2 &&
    v.every((x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  if (!ok) {
    throw new SafetensorsError(file, `"data_offsets" must be [begin, end], two non-negative integers; found ${describe(v)}`, name);
  }
  const [begin, end] = v as [number, number];
  if (begin > end) {
    throw new SafetensorsError(file, `"data_offsets" [${begin}, ${end}] must have begin <= end`, name);
  }
  if (end > bufferLength) {
    throw new SafetensorsError(
      file,
      `"data_offsets" [${begin}, ${end}] end beyond the byte buffer, which holds ${bufferLength} bytes (file truncated?)`,
      name,
    );
  }
  return [begin, end];
}

function checkByteSize(
  file: string,
  name: string,
  dtype: SafetensorsDType,
  shape: number[],
  [begin, end]: [number, number],
): void {
  // BigInt: a hostile shape's product can exceed 2^53 and must not round to a matching size.
  const numel = shape.reduce((p, d) => p * BigInt(d), 1n);
  const expected = numel * BigInt(DTYPES[dtype].size);
  if (expected !== BigInt(end - begin)) {
    throw new SafetensorsError(
      file,
      `shape ${formatShape(shape)} of dtype ${dtype} needs ${expected} bytes, but "data_offsets" [${begin}, ${end}] span ${end - begin}`,
      name,
    );
  }
}

// The spec requires the tensors to cover the byte buffer contiguously: sorted by offset, each
// begins where the previous one ended, and the last ends at the end of the buffer.
function checkTiling(file: string, tensors: SafetensorsTensorInfo[], bufferLength: number): void {
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let pos = 0;
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin < pos) {
      const other = prev === undefined ? '' : ` overlaps tensor ${JSON.stringify(prev.name)} [${prev.dataOffsets.join(', ')}]`;
      throw new SafetensorsError(file, `"data_offsets" [${begin}, ${end}]${other}: expected it to begin at byte ${pos}`, t.name);
    }
    if (begin > pos) {
      throw new SafetensorsError(
        file,
        `"data_offsets" [${begin}, ${end}] leave a gap: bytes ${pos}..${begin} of the buffer belong to no tensor (expected begin ${pos})`,
        t.name,
      );
    }
    pos = end;
    prev = t;
  }
  if (pos !== bufferLength) {
    throw new SafetensorsError(
      file,
      `the tensors cover ${pos} bytes of the byte buffer but it holds ${bufferLength}: ${bufferLength - pos} trailing bytes belong to no tensor`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Header: pure encoding

/**
 * Encodes a complete file prefix (8-byte length + JSON header) for tensors laid out in the given
 * order, padding the header with spaces so the byte buffer starts 8-byte aligned.
 */
export function encodeSafetensorsHeader(
  tensors: ReadonlyArray<{ name: string; dtype: SafetensorsDType; shape: readonly number[] }>,
  metadata?: Readonly<Record<string, string>>,
): { prefix: Uint8Array; entries: SafetensorsTensorInfo[] } {
  const root: Record<string, unknown> = {};
  if (metadata !== undefined) defineKey(root, '__metadata__', { ...metadata });
  const entries: SafetensorsTensorInfo[] = [];
  let pos = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((p, d) => p * d, DTYPES[t.dtype].size);
    const info: SafetensorsTensorInfo = { name: t.name, dtype: t.dtype, shape: [...t.shape], dataOffsets: [pos, pos + bytes] };
    defineKey(root, t.name, { dtype: info.dtype, shape: info.shape, data_offsets: info.dataOffsets });
    entries.push(info);
    pos += bytes;
  }
  const json = Buffer.from(JSON.stringify(root), 'utf8');
  const n = json.length + ((8 - ((8 + json.length) % 8)) % 8);
  const prefix = Buffer.alloc(8 + n, 0x20);
  prefix.writeBigUInt64LE(BigInt(n), 0);
  json.copy(prefix, 8);
  return { prefix, entries };
}

// Plain assignment of "__proto__" would set the prototype instead of adding a key.
function defineKey<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------
// File access

function withFile<T>(file: string, body: (fd: number) => T): T {
  const { fd } = openInputFile(file, { what: 'safetensors file', fail: (m, cause) => new SafetensorsError(file, m, undefined, { cause }) });
  try {
    return body(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readHeaderFromFd(file: string, fd: number): SafetensorsHeader {
  const size = fs.fstatSync(fd).size;
  if (size < 8) {
    throw new SafetensorsError(file, `the file holds ${size} bytes, fewer than the 8-byte header length prefix`);
  }
  const lenBytes = Buffer.alloc(8);
  readFileBytes(file, fd, lenBytes, 0, 'the header length');
  const n = lenBytes.readBigUInt64LE(0);
  checkHeaderLength(file, n, size);
  const json = Buffer.alloc(Number(n));
  readFileBytes(file, fd, json, 8, 'the header');
  return decodeSafetensorsHeader(file, json, size - 8 - Number(n));
}

function checkHeaderLength(file: string, n: bigint, size: number): void {
  if (n === 0n) throw new SafetensorsError(file, 'the header length is 0; expected a JSON header of at least 2 bytes');
  if (n > BigInt(MAX_HEADER_LENGTH)) {
    throw new SafetensorsError(file, `the header length is ${n} bytes, above the limit of ${MAX_HEADER_LENGTH}`);
  }
  if (n > BigInt(size - 8)) {
    throw new SafetensorsError(file, `the header length is ${n} bytes but only ${size - 8} bytes follow the length prefix (file truncated?)`);
  }
}

function readFileBytes(file: string, fd: number, dst: Uint8Array, position: number, what: string, tensor?: string): void {
  try {
    readAt(fd, dst, position);
  } catch (e) {
    throw new SafetensorsError(file, `reading ${what}: ${e instanceof Error ? e.message : String(e)}`, tensor, { cause: e });
  }
}

/** Reads and validates a file's header without loading any tensor data. */
export function parseSafetensorsHeader(file: string): SafetensorsHeader {
  return withFile(file, (fd) => readHeaderFromFd(file, fd));
}

// ---------------------------------------------------------------------------------------------
// Reading tensors

/**
 * Loads every tensor of a safetensors file as a contiguous CPU tensor, keyed by name, in the
 * order their bytes lie in the file. Each tensor's bytes go straight from the file into its own
 * memory. On any error, the tensors loaded so far are disposed.
 */
export function readSafetensors(file: string, options: ReadSafetensorsOptions = {}): StateDict {
  const target = options.dtype;
  if (target !== undefined && !FLOAT_DTYPES.includes(target)) {
    throw new SafetensorsError(file, `option dtype must be one of ${FLOAT_DTYPES.join(', ')}, got ${describe(target)}`);
  }
  return withFile(file, (fd) => {
    const header = readHeaderFromFd(file, fd);
    for (const t of header.tensors) engineDType(file, t); // refuse unsupported dtypes before allocating
    const out: StateDict = new Map();
    try {
      for (const t of header.tensors) out.set(t.name, loadTensor(file, fd, header.dataStart, t, target));
    } catch (e) {
      for (const t of out.values()) t.dispose();
      throw e;
    }
    return out;
  });
}

function engineDType(file: string, t: SafetensorsTensorInfo): DType {
  const engine = DTYPES[t.dtype].engine;
  if (engine === undefined) {
    throw new SafetensorsError(file, `dtype ${t.dtype} is not supported: libtorch has no 8-bit float dtype here (convert it to F16/BF16/F32 first)`, t.name);
  }
  return engine;
}

function loadTensor(file: string, fd: number, dataStart: number, t: SafetensorsTensorInfo, target?: FloatDType): Tensor {
  const tensor = empty(t.shape, { dtype: engineDType(file, t) });
  try {
    fillTensor(file, fd, dataStart, t, tensor.bytesView());
    if (target === undefined || !DTYPES[t.dtype].floating || tensor.dtype === target) return tensor;
    const converted = tensor.to(target);
    if (converted !== tensor) tensor.dispose(); // to() may hand back the same tensor
    return converted;
  } catch (e) {
    tensor.dispose();
    throw e;
  }
}

// Reads a tensor's little-endian bytes from the file into `view` (its own memory) and brings
// them into the engine's layout: native byte order, and widened for unsigned dtypes.
function fillTensor(file: string, fd: number, dataStart: number, t: SafetensorsTensorInfo, view: Uint8Array): void {
  const [begin, end] = t.dataOffsets;
  const raw = view.subarray(0, end - begin);
  readFileBytes(file, fd, raw, dataStart + begin, `${end - begin} bytes of data`, t.name);
  if (t.dtype === 'BOOL') checkBool(file, t, raw);
  if (t.dtype === 'U64') checkU64(file, t, raw);
  const size = DTYPES[t.dtype].size;
  if (!LITTLE_ENDIAN_HOST && size > 1) swapBytes(raw, size);
  if (t.dtype === 'U16') widenU16(view);
  if (t.dtype === 'U32') widenU32(view);
}

// A bool byte other than 0 or 1 is undefined behaviour in libtorch: refuse it.
function checkBool(file: string, t: SafetensorsTensorInfo, raw: Uint8Array): void {
  const i = raw.findIndex((b) => b > 1);
  if (i >= 0) {
    throw new SafetensorsError(file, `BOOL element ${i} holds byte ${raw[i]}; expected 0 or 1`, t.name);
  }
}

function checkU64(file: string, t: SafetensorsTensorInfo, raw: Uint8Array): void {
  for (let i = 7; i < raw.length; i += 8) {
    if (raw[i]! >= 0x80) {
      const value = new DataView(raw.buffer, raw.byteOffset + i - 7, 8).getBigUint64(0, true);
      throw new SafetensorsError(
        file,
        `U64 loads as int64, but element ${(i - 7) / 8} is ${value}, above the int64 maximum ${2n ** 63n - 1n}`,
        t.name,
      );
    }
  }
}

function swapBytes(raw: Uint8Array, size: number): void {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (size === 2) b.swap16();
  else if (size === 4) b.swap32();
  else if (size === 8) b.swap64();
}

// The U16 values fill the first half of the int32 tensor's memory; widening back to front
// never overwrites a value before it is read, so no second buffer is needed.
function widenU16(view: Uint8Array): void {
  const n = view.byteLength / 4;
  const src = new Uint16Array(view.buffer, view.byteOffset, n);
  const dst = new Int32Array(view.buffer, view.byteOffset, n);
  for (let i = n - 1; i >= 0; i--) dst[i] = src[i]!;
}

function widenU32(view: Uint8Array): void {
  const n = view.byteLength / 8;
  const src = new Uint32Array(view.buffer, view.byteOffset, n);
  const dst = new Uint32Array(view.buffer, view.byteOffset, 2 * n);
  const [lo, hi] = LITTLE_ENDIAN_HOST ? [0, 1] : [1, 0];
  for (let i = n - 1; i >= 0; i--) {
    const v = src[i]!;
    dst[2 * i + hi] = 0;
    dst[2 * i + lo] = v;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Writes tensors (any device or layout; stored contiguous, little-endian) in name order, with
 * optional string metadata. Atomic: the file appears complete under `file` or not at all, and
 * an existing file there is untouched on failure.
 */
export function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, Tensor>,
  metadata?: Readonly<Record<string, string>>,
): void {
  const plan = planWrite(file, tensors, metadata);
  try {
    writeAtomic(file, (fd) => {
      writeAll(fd, plan.prefix);
      for (const e of plan.entries) writeTensor(file, fd, e, tensors.get(e.name)!);
    });
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(file, `write failed: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
}

function planWrite(
  file: string,
  tensors: ReadonlyMap<string, Tensor>,
  metadata?: Readonly<Record<string, string>>,
): ReturnType<typeof encodeSafetensorsHeader> {
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new SafetensorsError(file, `metadata value for key ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
      }
    }
  }
  const names = [...tensors.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const specs = names.map((name) => describeForWrite(file, name, tensors.get(name)!));
  return encodeSafetensorsHeader(specs, metadata);
}

function describeForWrite(file: string, name: string, t: Tensor): { name: string; dtype: SafetensorsDType; shape: number[] } {
  if (name === '__metadata__') {
    throw new SafetensorsError(file, 'the name "__metadata__" is reserved by the format for metadata', name);
  }
  try {
    const dtype = ENGINE_TO_SAFETENSORS[t.dtype];
    if (dtype === undefined) throw new Error(`dtype ${String(t.dtype)} has no safetensors equivalent`);
    return { name, dtype, shape: [...t.shape] };
  } catch (e) {
    throw new SafetensorsError(file, `cannot be written: ${e instanceof Error ? e.message : String(e)}`, name, { cause: e });
  }
}

// One tensor's copy at a time: writing a checkpoint never holds a second copy of all of it.
function writeTensor(file: string, fd: number, e: SafetensorsTensorInfo, t: Tensor): void {
  let bytes: Uint8Array;
  try {
    bytes = t.toBytes();
  } catch (err) {
    throw new SafetensorsError(file, `cannot read its data: ${err instanceof Error ? err.message : String(err)}`, e.name, { cause: err });
  }
  const expected = e.dataOffsets[1] - e.dataOffsets[0];
  if (bytes.byteLength !== expected) {
    throw new SafetensorsError(file, `its data holds ${bytes.byteLength} bytes, expected ${expected} for shape ${formatShape(e.shape)} ${e.dtype}`, e.name);
  }
  writeAll(fd, bytes);
}
