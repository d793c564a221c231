// Opening files that come from outside. A path may name anything: a directory, /dev/zero (reads
// without end), /dev/urandom, a FIFO (blocks on open until a writer appears). Every reader opens
// through here, so only regular files of a bounded size are ever read, and a FIFO never blocks:
// the path is stat-ed before it is opened, and opened with O_NONBLOCK in case it was swapped.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/** Whether a path names an ONNX file (by its extension). */
export const isOnnxFile = (file: string): boolean => file.toLowerCase().endsWith('.onnx');

export interface InputFileOptions {
  /** What the file should be, for messages: 'CIFAR batch', 'image', ... */
  what?: string;
  /** The most bytes the file may hold (default: no limit beyond what fits in a Buffer). */
  maxBytes?: number;
  /** Makes the reader's own error class from a message (default: an Error prefixed with the path). */
  fail?: (message: string, cause?: unknown) => Error;
}

// O_NONBLOCK: a FIFO opens at once instead of waiting for a writer (0 where the platform lacks it).
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
// readSync takes at most ~2 GiB per call.
const READ_CHUNK = 1 << 30;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function failer(path: string, o: InputFileOptions): (message: string, cause?: unknown) => Error {
  return o.fail ?? ((message, cause) => new Error(`${path}: ${message}`, { cause }));
}

/** Throws unless `st` is a regular file of at most maxBytes; returns its size. */
function checkStats(path: string, st: Stats, o: InputFileOptions): number {
  const fail = failer(path, o);
  const what = o.what ?? 'file';
  if (!st.isFile()) throw fail(`expected a regular file (${what}), found ${kindOf(st)}`);
  if (o.maxBytes !== undefined && st.size > o.maxBytes) {
    throw fail(`${what} is ${st.size} bytes, more than the limit of ${o.maxBytes} bytes`);
  }
  return st.size;
}

function describeFsError(e: unknown): string {
  if ((e as { code?: string }).code === 'ENOENT') return 'no such file (ENOENT)';
  return `cannot read: ${e instanceof Error ? e.message : String(e)}`;
}

/** Throws (naming the path) unless it is a regular file within the size limit; returns its size. Opens nothing. */
export function checkInputFile(path: string, o: InputFileOptions = {}): number {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw failer(path, o)(describeFsError(e), e);
  }
  return checkStats(path, st, o);
}

/** Opens a regular file for reading; the caller closes `fd`. */
export function openInputFile(path: string, o: InputFileOptions = {}): { fd: number; size: number } {
  checkInputFile(path, o);
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw failer(path, o)(describeFsError(e), e);
  }
  try {
    // the path may have been replaced between the stat and the open
    return { fd, size: checkStats(path, fstatSync(fd), o) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Exactly `length` bytes at `position`, or an error saying the file ended. */
export function readAt(fd: number, dst: Uint8Array, position: number): void {
  let done = 0;
  while (done < dst.byteLength) {
    const n = readSync(fd, dst, done, Math.min(READ_CHUNK, dst.byteLength - done), position + done);
    if (n <= 0) throw new Error(`the file ended after ${position + done} bytes (wanted ${dst.byteLength} bytes at offset ${position})`);
    done += n;
  }
}

/** The whole content of a regular file of at most maxBytes. */
export function readInputFile(path: string, o: InputFileOptions = {}): Buffer {
  const { fd, size } = openInputFile(path, o);
  try {
    const out = Buffer.allocUnsafe(size);
    readAt(fd, out, 0);
    return out;
  } catch (e) {
    throw failer(path, o)(describeFsError(e), e);
  } finally {
    closeSync(fd);
  }
}

/** readInputFile without blocking the event loop (image decoding reads many files at once). */
export async function readInputFileAsync(path: string, o: InputFileOptions = {}): Promise<Buffer> {
  checkInputFile(path, o);
  let handle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (e) {
    throw failer(path, o)(describeFsError(e), e);
  }
  try {
    checkStats(path, await handle.stat(), o);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}
