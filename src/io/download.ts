// Downloading a file (pretrained weights) into a cache: over http or https, following redirects,
// with an idle timeout and a size cap, a progress bar on stderr, and the SHA-256 checked before the
// atomic rename, so a partial or corrupt download never takes the file's place. With no network
// the error names the URL and where to put the file by hand.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { writeAll, writeAtomicAsync } from './atomic.js';

export interface DownloadOptions {
  /** lowercase hex: the file's SHA-256 must start with it (torch.hub's check_hash) */
  sha256Prefix?: string;
  /** give up when no byte arrives for this long (connect included); default 30 s */
  timeoutMs?: number;
  /** refuse a larger body; default 4 GiB */
  maxBytes?: number;
  /** default 5 */
  maxRedirects?: number;
  /** draw a progress bar on stderr (default true) */
  progress?: boolean;
  /** shown before the bar, e.g. the model name; default the file name */
  label?: string;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  sha256: string;
}

/** A download that failed; the cached file, if any, is untouched. */
export class DownloadError extends Error {
  constructor(readonly url: string, readonly file: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`could not download ${url}: ${reason}`, options);
    this.name = 'DownloadError';
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 4 * 2 ** 30;
const HEX = /^[0-9a-f]{1,64}$/;

/** The SHA-256 of a file, lowercase hex, read in chunks. */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function checkOptions(o: DownloadOptions): void {
  if (o.sha256Prefix !== undefined && !HEX.test(o.sha256Prefix)) throw new RangeError(`download: sha256Prefix must be 1-64 lowercase hex digits, got '${o.sha256Prefix}'`);
  for (const k of ['timeoutMs', 'maxBytes', 'maxRedirects'] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`download: ${k} must be a non-negative number, got ${String(v)}`);
  }
}

const mb = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MB`;

/** Bytes received against the expected total: redrawn in place on a terminal, every ~10% elsewhere. */
class ByteProgress {
  readonly #tty = Boolean(process.stderr.isTTY);
  #last = 0;
  #decile = 0;
  constructor(readonly label: string, readonly total: number | null) {}

  update(done: number, final = false): void {
    const now = performance.now();
    const frac = this.total ? Math.min(1, done / this.total) : 0;
    const text = `${this.label}: ${mb(done)}${this.total ? ` / ${mb(this.total)} ${String(Math.floor(frac * 100)).padStart(3)}%` : ''}`;
    if (this.#tty) {
      if (!final && now - this.#last < 100) return;
      this.#last = now;
      const width = 30;
      const filled = Math.round(frac * width);
      const bar = this.total ? `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ` : '';
      process.stderr.write(`\r\x1b[2K${bar}${text}${final ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor(frac * 10);
    // the last line once: the 100% decile may have printed it already
    if (decile > this.#decile || (final && (this.total === null || this.#decile < 10))) {
      this.#decile = decile;
      process.stderr.write(`${text}\n`);
    }
  }
}

/**
 * Removes the temp files of earlier downloads of `file` whose process is gone (a killed
 * download leaves name.tmp-<pid>-<hex>); those of a live process, maybe downloading it now, stay.
 */
function removeDeadTempFiles(file: string): void {
  const dir = path.dirname(file);
  const re = new RegExp(`^${path.basename(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.tmp-(\\d+)-[0-9a-f]{12}$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = re.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    try {
      if (!alive) process.kill(pid, 0);
      alive = true;
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/** One GET, redirects followed; resolves with the response of the final URL. */
function request(url: string, o: Required<Pick<DownloadOptions, 'timeoutMs' | 'maxRedirects'>>, fail: (reason: string, cause?: unknown) => Error): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const go = (at: string, left: number): void => {
      let u: URL;
      try {
        u = new URL(at);
      } catch (e) {
        reject(fail(`not a URL: '${at}'`, e));
        return;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        reject(fail(`unsupported protocol '${u.protocol}' (http and https only)`));
        return;
      }
      const get = u.protocol === 'https:' ? https.get : http.get;
      const req = get(u, { headers: { 'user-agent': 'convkit', accept: '*/*' } }, (res) => {
        const code = res.statusCode ?? 0;
        if (code >= 300 && code < 400 && res.headers.location) {
          res.resume();
          if (left <= 0) {
            reject(fail(`too many redirects (more than ${o.maxRedirects})`));
            return;
          }
          go(new URL(res.headers.location, u).toString(), left - 1);
          return;
        }
        if (code !== 200) {
          res.resume();
          reject(fail(`the server answered ${code} ${res.statusMessage ?? ''}`.trim() + (at !== url ? ` (at ${at})` : '')));
          return;
        }
        resolve(res);
      });
      req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`no data for ${o.timeoutMs / 1000} s (timeout)`)));
      req.on('error', (e) => {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        const offline = ['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH'].includes(code) ? ' (no network, or the server is down?)' : '';
        reject(fail(`${(e as Error).message || String(e)}${offline}`, e));
      });
    };
    go(url, o.maxRedirects);
  });
}

/**
 * Downloads url into file (its folder created): streamed into a temp file beside it, the SHA-256
 * checked, then renamed into place. On any failure the temp file is removed, file is untouched,
 * and a DownloadError says why, where the file was to go, and how to put it there by hand.
 */
export async function downloadFile(url: string, file: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  checkOptions(o);
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  const manual = `; to install it by hand, download it elsewhere and put it at ${file}` +
    (o.sha256Prefix ? ` (its SHA-256 starts with ${o.sha256Prefix})` : '');
  const fail = (reason: string, cause?: unknown): DownloadError => new DownloadError(url, file, reason + manual, { cause });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  removeDeadTempFiles(file);
  const res = await request(url, { timeoutMs, maxRedirects: o.maxRedirects ?? 5 }, fail);
  const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : null;
  if (declared !== null && declared > maxBytes) {
    res.destroy();
    throw fail(`the server declares ${declared} bytes, more than the limit of ${maxBytes}`);
  }
  const bar = o.progress ?? true ? new ByteProgress(o.label ?? path.basename(file), declared) : null;
  const hash = createHash('sha256');
  let bytes = 0;
  await writeAtomicAsync(file, (fd) => new Promise<void>((resolve, reject) => {
    let settled = false;
    const stop = (e: Error | null): void => {
      if (settled) return;
      settled = true;
      if (e) {
        res.destroy();
        reject(e);
      } else {
        resolve();
      }
    };
    // the request's idle timeout covers the headers; this one covers the body
    res.setTimeout(timeoutMs, () => stop(fail(`no data for ${timeoutMs / 1000} s after ${bytes} bytes (timeout)`)));
    res.on('data', (chunk: Buffer) => {
      if (settled) return;
      bytes += chunk.length;
      if (bytes > maxBytes) {
        stop(fail(`the body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      try {
        writeAll(fd, chunk);
      } catch (e) {
        stop(fail(`writing ${file}: ${(e as Error).message}`, e));
        return;
      }
      hash.update(chunk);
      bar?.update(bytes);
    });
    res.on('aborted', () => stop(fail(`the connection closed after ${bytes}${declared !== null ? ` of ${declared}` : ''} bytes`)));
    res.on('error', (e) => stop(fail(`${e.message} after ${bytes}${declared !== null ? ` of ${declared}` : ''} bytes`, e)));
    // a socket that closes with neither an error nor the body's end
    res.on('close', () => stop(fail(`the connection closed after ${bytes}${declared !== null ? ` of ${declared}` : ''} bytes`)));
    res.on('end', () => {
      if (declared !== null && bytes !== declared) {
        stop(fail(`the body ended after ${bytes} of ${declared} bytes (truncated)`));
        return;
      }
      const digest = hash.digest('hex');
      if (o.sha256Prefix && !digest.startsWith(o.sha256Prefix)) {
        stop(fail(`SHA-256 mismatch: expected a hash starting with ${o.sha256Prefix}, got ${digest} (a corrupt or different file; nothing was kept)`));
        return;
      }
      bar?.update(bytes, true);
      stop(null);
    });
  }));
  return { file, bytes, sha256: sha256File(file) };
}

/** The child script downloadFileSync runs (beside this file, compiled or not). */
const MAIN = fileURLToPath(new URL('./download_main.js', import.meta.url));

/**
 * downloadFile for synchronous callers (createModel): runs it in a child Node process and waits.
 * The progress bar goes to this process's stderr; a failure throws the same DownloadError.
 */
export function downloadFileSync(url: string, file: string, o: DownloadOptions = {}): DownloadResult {
  checkOptions(o);
  const r = spawnSync(process.execPath, [MAIN], {
    input: JSON.stringify({ url, file, options: o }),
    stdio: ['pipe', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
    encoding: 'utf8',
  });
  if (r.error) throw new DownloadError(url, file, `could not start the download process: ${r.error.message}`, { cause: r.error });
  let out: { ok: true; result: DownloadResult } | { ok: false; reason: string; message: string } | undefined;
  try {
    out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as typeof out;
  } catch {
    out = undefined;
  }
  if (!out) throw new DownloadError(url, file, `the download process exited with ${r.status ?? r.signal} and no result`);
  if (!out.ok) throw new DownloadError(url, file, out.reason);
  return out.result;
}
