// The idx format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), plain or gzipped.
//
// Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
// dimension, then the data in row-major order, big-endian. This module only produces typed
// arrays; the data layer turns them into tensors.

import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { formatShape } from '../engine/format.js';
import { readInputFile } from './files.js';

/** An error in a dataset file: `path` is the file, the message says what was expected and found. */
export class DatasetFileError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`${path}: ${message}`, options);
    this.name = 'DatasetFileError';
    this.path = path;
  }
}

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The result of `readIdx`; `dtype` tells which typed array `data` is. Data is in native byte order. */
export type IdxArray =
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int8'; shape: number[]; data: Int8Array }
  | { dtype: 'int16'; shape: number[]; data: Int16Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'float64'; shape: number[]; data: Float64Array };

interface DtypeInfo {
  dtype: IdxDtype;
  size: number;
}

const TYPE_CODES: ReadonlyMap<number, DtypeInfo> = new Map([
  [0x08, { dtype: 'uint8', size: 1 }],
  [0x09, { dtype: 'int8', size: 1 }],
  [0x0b, { dtype: 'int16', size: 2 }],
  [0x0c, { dtype: 'int32', size: 4 }],
  [0x0d, { dtype: 'float32', size: 4 }],
  [0x0e, { dtype: 'float64', size: 8 }],
]);

/** The idx type code of each dtype (what `writeIdx` in tests and tools need). */
export const IDX_TYPE_CODES: Readonly<Record<IdxDtype, number>> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export const MNIST_CLASSES: readonly string[] = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

const GZIP_MAGIC0 = 0x1f;
const GZIP_MAGIC1 = 0x8b;

/** Whether `bytes` starts with the gzip magic; the name of a file is not trusted for this. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC0 && bytes[1] === GZIP_MAGIC1;
}

/**
 * The largest idx data convkit reads: 2 GiB, 40 times Fashion-MNIST's training images. It bounds
 * the file on disk, and what a gzipped file may inflate to whatever its header declares.
 */
export const MAX_IDX_BYTES = 2 ** 31;

function readBytes(path: string): Buffer {
  return readInputFile(path, {
    what: 'idx file', maxBytes: MAX_IDX_BYTES, fail: (m, cause) => new DatasetFileError(path, m, { cause }),
  });
}

function gunzipError(path: string, compressed: Buffer, err: unknown): DatasetFileError {
  return new DatasetFileError(
    path,
    `corrupt gzip data: expected a complete gzip stream (${compressed.length} bytes on disk), found: ${(err as Error).message}`,
    { cause: err },
  );
}

// Deflate's best ratio is 1032:1, so a prefix of n compressed bytes inflates to at most this.
const inflatedBound = (n: number): number => 1032 * n + 1024;

/**
 * The first bytes of a gzip stream, enough for the idx header: inflated from growing prefixes of
 * the compressed data, each bounded by deflate's best ratio, so a bomb cannot inflate here.
 */
function gunzipHead(path: string, compressed: Buffer): Buffer {
  const want = 4 + 4 * 255;
  let head = Buffer.alloc(0);
  for (let n = 1024; ; n *= 4) {
    const prefix = compressed.subarray(0, n);
    try {
      head = gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: inflatedBound(prefix.length) });
    } catch (err) {
      throw gunzipError(path, compressed, err);
    }
    if (head.length >= want || prefix.length === compressed.length) return head;
  }
}

/** Inflates a gzipped idx file to at most the size its header declares (and MAX_IDX_BYTES). */
function gunzipIdx(path: string, compressed: Buffer): Buffer {
  const header = parseHeader(path, gunzipHead(path, compressed));
  const declared = header.dataOffset + header.byteLength;
  if (declared > MAX_IDX_BYTES) {
    throw new DatasetFileError(path, `idx header declares ${header.info.dtype} ${formatShape(header.shape)}: ${declared} bytes, more than the limit of ${MAX_IDX_BYTES}`);
  }
  try {
    // one byte of slack, so that data beyond the declared size is reported as such below
    return gunzipSync(compressed, { maxOutputLength: declared + 1 });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DatasetFileError(path, `gzip data inflates to more than the ${declared} bytes its idx header declares (${header.info.dtype} ${formatShape(header.shape)})`, { cause: err });
    }
    throw gunzipError(path, compressed, err);
  }
}

/** Reads a file, gunzipping it when its first bytes are the gzip magic. */
export function readMaybeGzip(path: string): Buffer {
  const raw = readBytes(path);
  return isGzip(raw) ? gunzipIdx(path, raw) : raw;
}

function hex(byte: number | undefined): string {
  return byte === undefined ? 'end of file' : `0x${byte.toString(16).padStart(2, '0')}`;
}

interface IdxHeader {
  info: DtypeInfo;
  shape: number[];
  dataOffset: number;
  byteLength: number;
}

function parseHeader(path: string, bytes: Uint8Array): IdxHeader {
  if (bytes.length < 4) {
    throw new DatasetFileError(path, `not an idx file: expected a 4-byte header, found ${bytes.length} bytes`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DatasetFileError(
      path,
      `not an idx file: expected magic bytes 0x00 0x00, found ${hex(bytes[0])} ${hex(bytes[1])}`,
    );
  }
  const info = TYPE_CODES.get(bytes[2]!);
  if (info === undefined) {
    throw new DatasetFileError(
      path,
      `unknown idx type code: expected one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, found ${hex(bytes[2])}`,
    );
  }
  const ndims = bytes[3]!;
  if (ndims === 0) {
    throw new DatasetFileError(path, 'idx header: expected at least 1 dimension, found 0');
  }
  const dataOffset = 4 + 4 * ndims;
  if (bytes.length < dataOffset) {
    throw new DatasetFileError(
      path,
      `truncated idx header: expected ${dataOffset} bytes for ${ndims} dimensions, found ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  return { info, shape, dataOffset, byteLength: dataByteLength(path, shape, info.size) };
}

// Dimensions come from the file; a hostile header must not overflow into a small, wrong size.
function dataByteLength(path: string, shape: number[], itemSize: number): number {
  let bytes = itemSize;
  for (const dim of shape) {
    bytes *= dim;
    if (bytes > Number.MAX_SAFE_INTEGER) {
      throw new DatasetFileError(path, `idx dimensions ${formatShape(shape)} describe an impossibly large array`);
    }
  }
  return bytes;
}

/** Reads an idx file (gzipped or plain) into a typed array in native byte order. */
export function readIdx(path: string): IdxArray {
  return parseIdx(readMaybeGzip(path), path);
}

/** Parses idx bytes already in memory; `path` is only used in error messages. */
export function parseIdx(bytes: Uint8Array, path = '<buffer>'): IdxArray {
  const header = parseHeader(path, bytes);
  const found = bytes.length - header.dataOffset;
  if (found !== header.byteLength) {
    const what = found < header.byteLength ? 'truncated idx data' : 'trailing bytes after idx data';
    throw new DatasetFileError(
      path,
      `${what}: expected ${header.byteLength} data bytes for ${header.info.dtype} ${formatShape(header.shape)}, ` +
        `found ${found}`,
    );
  }
  return decodeData(bytes, header);
}

function decodeData(bytes: Uint8Array, { info, shape, dataOffset, byteLength }: IdxHeader): IdxArray {
  const n = byteLength / info.size;
  // Copies rather than views: the source buffer may be pooled, and consumers may hand `.buffer`
  // to native code expecting it to hold exactly this array.
  const src = bytes.subarray(dataOffset, dataOffset + byteLength);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (info.dtype) {
    case 'uint8':
      return { dtype: 'uint8', shape, data: new Uint8Array(src) };
    case 'int8':
      return { dtype: 'int8', shape, data: new Int8Array(new Uint8Array(src).buffer) };
    case 'int16':
      return { dtype: 'int16', shape, data: fill(new Int16Array(n), (i) => view.getInt16(2 * i, false)) };
    case 'int32':
      return { dtype: 'int32', shape, data: fill(new Int32Array(n), (i) => view.getInt32(4 * i, false)) };
    case 'float32':
      return { dtype: 'float32', shape, data: fill(new Float32Array(n), (i) => view.getFloat32(4 * i, false)) };
    case 'float64':
      return { dtype: 'float64', shape, data: fill(new Float64Array(n), (i) => view.getFloat64(8 * i, false)) };
  }
}

function fill<T extends { length: number; [i: number]: number }>(out: T, at: (i: number) => number): T {
  for (let i = 0; i < out.length; i++) out[i] = at(i);
  return out;
}

/** Encodes an idx file (uncompressed); the inverse of `parseIdx`. Used by tests and converters. */
export function encodeIdx(array: IdxArray): Uint8Array {
  const { dtype, shape, data } = array;
  const size = data.BYTES_PER_ELEMENT;
  const expected = shape.reduce((a, b) => a * b, 1);
  if (expected !== data.length) {
    throw new RangeError(`encodeIdx: shape ${formatShape(shape)} needs ${expected} elements, data has ${data.length}`);
  }
  const out = new Uint8Array(4 + 4 * shape.length + data.length * size);
  const view = new DataView(out.buffer);
  out[2] = IDX_TYPE_CODES[dtype];
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  writeBigEndian(view, 4 + 4 * shape.length, array);
  return out;
}

function writeBigEndian(view: DataView, offset: number, { dtype, data }: IdxArray): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    switch (dtype) {
      case 'uint8': view.setUint8(offset + i, v); break;
      case 'int8': view.setInt8(offset + i, v); break;
      case 'int16': view.setInt16(offset + 2 * i, v, false); break;
      case 'int32': view.setInt32(offset + 4 * i, v, false); break;
      case 'float32': view.setFloat32(offset + 4 * i, v, false); break;
      case 'float64': view.setFloat64(offset + 8 * i, v, false); break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// MNIST-layout splits

export type MnistSplitName = 'train' | 'test';

export interface MnistSplit {
  /** N*H*W uint8 pixels, image-major, row-major (NCHW with C = 1). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export interface MnistSplitOptions {
  /** Labels must be below this; 10 for MNIST and Fashion-MNIST. */
  numClasses?: number;
}

const SPLIT_PREFIX: Record<MnistSplitName, string> = { train: 'train', test: 't10k' };

// The official names, then the dotted variant some mirrors use; each gzipped or not.
function candidates(dir: string, prefix: string, kind: 'images' | 'labels'): string[] {
  const idxN = kind === 'images' ? 'idx3' : 'idx1';
  const stems = [`${prefix}-${kind}-${idxN}-ubyte`, `${prefix}-${kind}.${idxN}-ubyte`];
  return stems.flatMap((s) => [join(dir, `${s}.gz`), join(dir, s)]);
}

function installHint(dir: string): string {
  return resolve(dir) === FASHION_MNIST_DIR
    ? '; Debian/Ubuntu: `apt-get install dataset-fashion-mnist` provides it'
    : '';
}

/** Finds the idx file of one split part, or throws saying which files were looked for. */
export function findMnistFile(dir: string, split: MnistSplitName, kind: 'images' | 'labels'): string {
  const paths = candidates(dir, SPLIT_PREFIX[split], kind);
  const found = paths.find((p) => existsSync(p) && statSync(p).isFile());
  if (found !== undefined) return found;
  const where = existsSync(dir) ? `in ${dir}` : `(directory ${dir} does not exist)`;
  throw new DatasetFileError(
    paths[0]!,
    `MNIST-format ${split} ${kind} not found ${where}: looked for ${paths.join(', ')}${installHint(dir)}`,
  );
}

function expectUint8(path: string, arr: IdxArray, ndims: number, what: string): Uint8Array {
  if (arr.dtype !== 'uint8' || arr.shape.length !== ndims) {
    throw new DatasetFileError(
      path,
      `expected ${what} as ${ndims}-D uint8, found ${arr.shape.length}-D ${arr.dtype} ${formatShape(arr.shape)}`,
    );
  }
  return arr.data;
}

/** Throws naming the file and index of the first label not below `numClasses`. */
export function checkLabels(
  path: string,
  labels: Uint8Array,
  numClasses: number,
  describe: (index: number) => string = (i) => `label at index ${i}`,
): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      throw new DatasetFileError(
        path,
        `${describe(i)} is out of range: expected 0..${numClasses - 1}, found ${labels[i]}`,
      );
    }
  }
}

/** Reads the images and labels of an MNIST-layout split (MNIST, Fashion-MNIST, KMNIST, ...). */
export function readMnistSplit(dir: string, split: MnistSplitName, options: MnistSplitOptions = {}): MnistSplit {
  const numClasses = options.numClasses ?? 10;
  const imagePath = findMnistFile(dir, split, 'images');
  const labelPath = findMnistFile(dir, split, 'labels');
  const imageArr = readIdx(imagePath);
  const images = expectUint8(imagePath, imageArr, 3, 'images');
  const labels = expectUint8(labelPath, readIdx(labelPath), 1, 'labels');
  const [count, height, width] = imageArr.shape as [number, number, number];
  if (labels.length !== count) {
    throw new DatasetFileError(
      labelPath,
      `label count does not match ${imagePath}: expected ${count} labels, found ${labels.length}`,
    );
  }
  checkLabels(labelPath, labels, numClasses);
  return { images, labels, count, height, width };
}
