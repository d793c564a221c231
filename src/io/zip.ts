// A minimal, defensive ZIP reader: enough for the archives torch.save writes (stored entries,
// zip64 records, data descriptors) plus deflate for archives re-zipped by other tools.
// Every offset and size read from the file is checked against the file before it is used, so a
// truncated or hostile archive fails with an Error naming the file instead of reading garbage.
import { closeSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { openInputFile, readAt } from './files.js';

/** Random access to the bytes of an archive: a file read on demand, or a buffer in memory. */
export interface ByteSource {
  /** What errors call the source: a file path, or a caller-chosen label. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; callers check bounds first. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export function bufferSource(bytes: Uint8Array, name = '<buffer>'): ByteSource {
  return {
    name,
    size: bytes.length,
    read: (offset, length) => bytes.subarray(offset, offset + length),
    close: () => {},
  };
}

/** A regular file (anything else is refused before it is read), read on demand. */
export function fileSource(path: string): ByteSource {
  const { fd, size } = openInputFile(path, { what: 'zip archive' });
  let open = true;
  return {
    name: path,
    size,
    read(offset, length) {
      const out = new Uint8Array(length);
      try {
        readAt(fd, out, offset);
      } catch (e) {
        throw new Error(`${path}: file shrank while reading: ${(e as Error).message}`, { cause: e });
      }
      return out;
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Whether a file starts like a zip archive (torch.save's format); refuses what is not a regular file. */
export function isZipFile(path: string, fail?: (message: string, cause?: unknown) => Error): boolean {
  const { fd, size } = openInputFile(path, { fail });
  try {
    const magic = new Uint8Array(4);
    if (size < 4) return false;
    readAt(fd, magic, 0);
    return view(magic).getUint32(0, true) === SIG_LOCAL;
  } finally {
    closeSync(fd);
  }
}

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
  readonly flags: number;
}

export interface ZipOptions {
  /** Check each entry's CRC-32 when it is read (default true): catches bit rot in the data. */
  verifyCrc?: boolean;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const EOCD64_LOCATOR_SIZE = 20;
const EOCD64_MIN_SIZE = 56;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

export class ZipReader {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly verifyCrc: boolean;
  /** Where the central directory starts: no entry's data may extend past it. */
  private readonly dataLimit: number;

  private constructor(
    private readonly src: ByteSource,
    readonly entries: readonly ZipEntry[],
    dataLimit: number,
    opts: ZipOptions,
  ) {
    this.verifyCrc = opts.verifyCrc ?? true;
    this.dataLimit = dataLimit;
    for (const e of entries) {
      if (this.byName.has(e.name)) throw this.error(`duplicate entry '${e.name}'`);
      this.byName.set(e.name, e);
    }
  }

  /** Opens a file; the reader keeps it open until close(). */
  static open(path: string, opts: ZipOptions = {}): ZipReader {
    const src = fileSource(path);
    try {
      return ZipReader.from(src, opts);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  static fromBuffer(bytes: Uint8Array, name = '<buffer>', opts: ZipOptions = {}): ZipReader {
    return ZipReader.from(bufferSource(bytes, name), opts);
  }

  static from(src: ByteSource, opts: ZipOptions = {}): ZipReader {
    const dir = findCentralDirectory(src);
    const entries = parseCentralDirectory(src, dir);
    return new ZipReader(src, entries, dir.offset, opts);
  }

  get name(): string {
    return this.src.name;
  }

  get size(): number {
    return this.src.size;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The entry's uncompressed bytes (may alias the source buffer for stored entries). `maxBytes`
   * bounds the size the directory may declare: a deflated entry is refused before it inflates.
   */
  read(name: string, maxBytes?: number): Uint8Array {
    const e = this.byName.get(name);
    if (!e) throw this.error(`no entry '${name}'`);
    return this.readEntry(e, maxBytes);
  }

  readEntry(e: ZipEntry, maxBytes = Infinity): Uint8Array {
    if (e.size > maxBytes) {
      throw this.error(`entry '${e.name}' declares ${e.size} bytes uncompressed, more than the ${maxBytes} bytes it may hold`);
    }
    const start = this.dataOffset(e);
    const raw = this.src.read(start, e.compressedSize);
    const out = e.method === 0 ? raw : this.inflate(e, raw);
    // A plain Uint8Array whichever way it was read (Buffer subclasses compare unequal in tests).
    const data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    if (this.verifyCrc && (crc32(data) >>> 0) !== e.crc32) {
      throw this.error(`entry '${e.name}' is corrupt: CRC-32 mismatch`);
    }
    return data;
  }

  close(): void {
    this.src.close();
  }

  /** The data follows the local header, whose extra field may differ from the central one. */
  private dataOffset(e: ZipEntry): number {
    const at = e.localHeaderOffset;
    if (at + LOCAL_SIZE > this.dataLimit) throw this.error(`entry '${e.name}': local header at ${at} is beyond the data area`);
    const h = view(this.src.read(at, LOCAL_SIZE));
    if (h.getUint32(0, true) !== SIG_LOCAL) throw this.error(`entry '${e.name}': no local header signature at offset ${at}`);
    const nameLen = h.getUint16(26, true);
    const extraLen = h.getUint16(28, true);
    const start = at + LOCAL_SIZE + nameLen + extraLen;
    if (start + e.compressedSize > this.dataLimit) {
      throw this.error(`entry '${e.name}': data (${e.compressedSize} bytes at offset ${start}) runs past the data area (ends at ${this.dataLimit})`);
    }
    const localName = decodeName(this.src.read(at + LOCAL_SIZE, nameLen), e.flags);
    if (localName !== e.name) throw this.error(`entry '${e.name}': local header names '${localName}' instead`);
    return start;
  }

  private inflate(e: ZipEntry, raw: Uint8Array): Uint8Array {
    let out: Buffer;
    try {
      // maxOutputLength bounds a zip bomb to the size the directory declared.
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
    } catch (err) {
      throw this.error(`entry '${e.name}': deflate data is corrupt (${(err as Error).message})`);
    }
    if (out.length !== e.size) throw this.error(`entry '${e.name}': inflated to ${out.length} bytes, expected ${e.size}`);
    return out;
  }

  private error(msg: string): Error {
    return new Error(`${this.src.name}: ${msg}`);
  }
}

interface CentralDirectory {
  offset: number;
  size: number;
  count: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function zipError(src: ByteSource, msg: string): Error {
  return new Error(`${src.name}: not a valid zip archive: ${msg}`);
}

function u64(src: ByteSource, dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw zipError(src, `${what} ${v} is too large`);
  return Number(v);
}

/** Scans back from the end for the EOCD record whose comment ends exactly at the end of file. */
function findEocd(src: ByteSource): number {
  if (src.size < EOCD_SIZE) throw zipError(src, `file is ${src.size} bytes, too short for an end of central directory record`);
  const tailLen = Math.min(src.size, EOCD_SIZE + U16_MAX);
  const tailStart = src.size - tailLen;
  const tail = src.read(tailStart, tailLen);
  const dv = view(tail);
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    if (dv.getUint32(i, true) !== SIG_EOCD) continue;
    if (i + EOCD_SIZE + dv.getUint16(i + 20, true) === tailLen) return tailStart + i;
  }
  throw zipError(src, 'no end of central directory record (the file is truncated or not a zip)');
}

function findCentralDirectory(src: ByteSource): CentralDirectory {
  const eocdAt = findEocd(src);
  const dv = view(src.read(eocdAt, EOCD_SIZE));
  if (dv.getUint16(4, true) !== 0 || dv.getUint16(6, true) !== 0) throw zipError(src, 'multi-disk archives are not supported');
  let dir: CentralDirectory = { count: dv.getUint16(10, true), size: dv.getUint32(12, true), offset: dv.getUint32(16, true) };
  let limit = eocdAt;
  const needs64 = dir.count === U16_MAX || dir.size === U32_MAX || dir.offset === U32_MAX;
  const locatorAt = eocdAt - EOCD64_LOCATOR_SIZE;
  if (locatorAt >= 0 && view(src.read(locatorAt, 4)).getUint32(0, true) === SIG_EOCD64_LOCATOR) {
    const z = readEocd64(src, locatorAt);
    dir = z.dir;
    limit = z.at;
  } else if (needs64) {
    throw zipError(src, 'the end of central directory record points to a zip64 record that is missing');
  }
  if (dir.offset + dir.size > limit) {
    throw zipError(src, `central directory (${dir.size} bytes at offset ${dir.offset}) runs past its end record at ${limit}`);
  }
  return dir;
}

function readEocd64(src: ByteSource, locatorAt: number): { dir: CentralDirectory; at: number } {
  const loc = view(src.read(locatorAt, EOCD64_LOCATOR_SIZE));
  const at = u64(src, loc, 8, 'zip64 end record offset');
  if (at + EOCD64_MIN_SIZE > locatorAt) throw zipError(src, `zip64 end record offset ${at} is out of range`);
  const dv = view(src.read(at, EOCD64_MIN_SIZE));
  if (dv.getUint32(0, true) !== SIG_EOCD64) throw zipError(src, `no zip64 end record signature at offset ${at}`);
  if (dv.getUint32(16, true) !== 0 || dv.getUint32(20, true) !== 0) throw zipError(src, 'multi-disk archives are not supported');
  const dir = {
    count: u64(src, dv, 32, 'entry count'),
    size: u64(src, dv, 40, 'central directory size'),
    offset: u64(src, dv, 48, 'central directory offset'),
  };
  return { dir, at };
}

function parseCentralDirectory(src: ByteSource, dir: CentralDirectory): ZipEntry[] {
  const bytes = src.read(dir.offset, dir.size);
  const dv = view(bytes);
  // Each entry takes at least CENTRAL_SIZE bytes: a huge declared count cannot make us loop long.
  if (dir.count > dir.size / CENTRAL_SIZE) throw zipError(src, `${dir.count} entries cannot fit in a ${dir.size}-byte central directory`);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < dir.count; i++) {
    if (p + CENTRAL_SIZE > bytes.length) throw zipError(src, `central directory ends inside entry ${i}`);
    const { entry, next } = parseCentralEntry(src, bytes, dv, p, i);
    entries.push(entry);
    p = next;
  }
  return entries;
}

function parseCentralEntry(src: ByteSource, bytes: Uint8Array, dv: DataView, p: number, i: number): { entry: ZipEntry; next: number } {
  if (dv.getUint32(p, true) !== SIG_CENTRAL) throw zipError(src, `bad signature for central directory entry ${i}`);
  const flags = dv.getUint16(p + 8, true);
  const method = dv.getUint16(p + 10, true);
  const nameLen = dv.getUint16(p + 28, true);
  const extraLen = dv.getUint16(p + 30, true);
  const commentLen = dv.getUint16(p + 32, true);
  const next = p + CENTRAL_SIZE + nameLen + extraLen + commentLen;
  if (next > bytes.length) throw zipError(src, `central directory entry ${i} runs past the directory`);
  const name = decodeName(bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLen), flags);
  if (flags & 0x1) throw new Error(`${src.name}: entry '${name}' is encrypted; encrypted archives are not supported`);
  if (method !== 0 && method !== 8) {
    throw new Error(`${src.name}: entry '${name}' uses compression method ${method}; only stored (0) and deflate (8) are supported`);
  }
  const extra = bytes.subarray(p + CENTRAL_SIZE + nameLen, p + CENTRAL_SIZE + nameLen + extraLen);
  const sizes = applyZip64(src, name, extra, {
    size: dv.getUint32(p + 24, true),
    compressedSize: dv.getUint32(p + 20, true),
    localHeaderOffset: dv.getUint32(p + 42, true),
  });
  if (method === 0 && sizes.size !== sizes.compressedSize) {
    throw zipError(src, `stored entry '${name}' declares ${sizes.compressedSize} bytes stored but ${sizes.size} uncompressed`);
  }
  const entry: ZipEntry = { name, method, flags, crc32: dv.getUint32(p + 16, true), ...sizes };
  return { entry, next };
}

interface EntrySizes {
  size: number;
  compressedSize: number;
  localHeaderOffset: number;
}

/** Replaces 0xFFFFFFFF fields by the zip64 extended information (id 1), in the spec's order. */
function applyZip64(src: ByteSource, name: string, extra: Uint8Array, s: EntrySizes): EntrySizes {
  const wanted = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((k) => s[k] === U32_MAX);
  if (wanted.length === 0) return s;
  const dv = view(extra);
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = dv.getUint16(p, true);
    const len = dv.getUint16(p + 2, true);
    if (p + 4 + len > extra.length) break;
    if (id === 1) {
      if (len < wanted.length * 8) throw zipError(src, `entry '${name}': zip64 extra field is too short`);
      const out = { ...s };
      wanted.forEach((k, j) => (out[k] = u64(src, dv, p + 4 + j * 8, `entry '${name}' ${k}`)));
      return out;
    }
    p += 4 + len;
  }
  throw zipError(src, `entry '${name}' needs a zip64 extra field but has none`);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const latin1 = new TextDecoder('latin1');

/** Bit 11 marks UTF-8 names; others are CP437, which agrees with latin1 on the ASCII names torch writes. */
function decodeName(b: Uint8Array, flags: number): string {
  return (flags & 0x800 ? utf8 : latin1).decode(b);
}

