// Atomic file writes: a temp file beside the target, fsync, rename, then fsync the folder. Readers
// see the old content or the new, never half of it, and a process killed mid-write leaves the old
// file whole (and a temp file that removeStaleTempFiles cleans up). Every file convkit writes goes
// through writeAtomic.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

const TEMP_SUFFIX = /\.tmp-\d+-[0-9a-f]{12}$/;

function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Creates `file` atomically, its content written by `write` to a fresh descriptor. On any error
 * the temp file is removed and `file` is untouched.
 */
export function writeAtomic(file: string, write: (fd: number) => void): void {
  const tmp = tempName(file);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      write(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirectory(path.dirname(file));
}

/**
 * writeAtomic for a writer that awaits (a download streamed to disk): the same temp file, fsync
 * and rename; a rejected `write` removes the temp file and leaves `file` untouched.
 */
export async function writeAtomicAsync(file: string, write: (fd: number) => Promise<void>): Promise<void> {
  const tmp = tempName(file);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      await write(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirectory(path.dirname(file));
}

/** Writes all of `bytes` at the descriptor's position. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
}

/** Writes a text or binary file atomically, creating its folder when missing. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeAtomic(file, (fd) => writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}

const COPY_CHUNK = 8 << 20;

/** Copies a file atomically, in chunks (a checkpoint is never held in memory whole). */
export function copyFileAtomic(src: string, dst: string): void {
  const from = fs.openSync(src, 'r');
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    writeAtomic(dst, (fd) => {
      for (let n; (n = fs.readSync(from, buf, 0, COPY_CHUNK, null)) > 0; ) writeAll(fd, buf.subarray(0, n));
    });
  } finally {
    fs.closeSync(from);
  }
}

/** Removes temp files a killed writer left in dir (name.tmp-<pid>-<hex>); returns their names. */
export function removeStaleTempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const stale = fs.readdirSync(dir).filter((f) => TEMP_SUFFIX.test(f));
  for (const f of stale) fs.rmSync(path.join(dir, f), { force: true });
  return stale;
}

// Makes the rename itself durable; best effort, since some platforms cannot fsync a directory.
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not fatal: the data itself is already synced
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
