// The ZIP reader: archives from Python's zipfile and from a small writer below (which can force the
// zip64 records torch writes for big files), and every kind of damage, each of which must end in an
// Error naming the archive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { ZipReader } from '../../src/io/zip.js';

const PYTHON = '/usr/bin/python3';

interface Spec {
  name: string;
  data: Uint8Array;
  method?: 0 | 8;
  flags?: number;
  /** Overrides of the central entry's declared sizes (to lie about them). */
  size?: number;
  compressedSize?: number;
}

interface MakeOptions {
  zip64?: boolean;
  comment?: string;
}

const enc = new TextEncoder();

class Writer {
  private readonly parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  fields(spec: [number, 2 | 4 | 8][]): void {
    const b = new Uint8Array(spec.reduce((a, [, n]) => a + n, 0));
    const dv = new DataView(b.buffer);
    let p = 0;
    for (const [v, n] of spec) {
      if (n === 2) dv.setUint16(p, v, true);
      else if (n === 4) dv.setUint32(p, v >>> 0, true);
      else dv.setBigUint64(p, BigInt(v), true);
      p += n;
    }
    this.bytes(b);
  }
  done(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts)); // a copy: its own ArrayBuffer, offset 0
  }
}

/** A ZIP archive; with zip64 every central size/offset is a 0xFFFFFFFF sentinel plus an extra field. */
function makeZip(specs: Spec[], opts: MakeOptions = {}): Uint8Array {
  const w = new Writer();
  const central: { spec: Spec; name: Uint8Array; data: Uint8Array; crc: number; offset: number }[] = [];
  for (const spec of specs) {
    const name = enc.encode(spec.name);
    const data = spec.method === 8 ? deflateRawSync(spec.data) : spec.data;
    const crc = crc32(spec.data) >>> 0;
    const offset = w.length;
    w.fields([[0x04034b50, 4], [20, 2], [spec.flags ?? 0x800, 2], [spec.method ?? 0, 2], [0, 2], [0, 2], [crc, 4], [data.length, 4], [spec.data.length, 4], [name.length, 2], [0, 2]]);
    w.bytes(name);
    w.bytes(data);
    central.push({ spec, name, data, crc, offset });
  }
  const cdOffset = w.length;
  for (const { spec, name, data, crc, offset } of central) {
    const size = spec.size ?? spec.data.length;
    const csize = spec.compressedSize ?? data.length;
    const big = opts.zip64 ? 0xffffffff : undefined;
    w.fields([[0x02014b50, 4], [0x031e, 2], [45, 2], [spec.flags ?? 0x800, 2], [spec.method ?? 0, 2], [0, 2], [0, 2], [crc, 4]]);
    w.fields([[big ?? csize, 4], [big ?? size, 4], [name.length, 2], [opts.zip64 ? 28 : 0, 2], [0, 2], [0, 2], [0, 2], [0, 4], [big ?? offset, 4]]);
    w.bytes(name);
    if (opts.zip64) w.fields([[1, 2], [24, 2], [size, 8], [csize, 8], [offset, 8]]);
  }
  const cdSize = w.length - cdOffset;
  const n = specs.length;
  if (opts.zip64) {
    const at = w.length;
    w.fields([[0x06064b50, 4], [44, 8], [0x031e, 2], [45, 2], [0, 4], [0, 4], [n, 8], [n, 8], [cdSize, 8], [cdOffset, 8]]);
    w.fields([[0x07064b50, 4], [0, 4], [at, 8], [1, 4]]);
  }
  const comment = enc.encode(opts.comment ?? '');
  const s16 = opts.zip64 ? 0xffff : n;
  const s32 = opts.zip64 ? 0xffffffff : undefined;
  w.fields([[0x06054b50, 4], [0, 2], [0, 2], [s16, 2], [s16, 2], [s32 ?? cdSize, 4], [s32 ?? cdOffset, 4], [comment.length, 2]]);
  w.bytes(comment);
  return w.done();
}

const text = (s: string): Uint8Array => enc.encode(s);
const SAMPLE: Spec[] = [
  { name: 'arch/data.pkl', data: text('pickle bytes') },
  { name: 'arch/data/0', data: Uint8Array.from({ length: 300 }, (_, i) => i & 0xff) },
  { name: 'arch/deflated', data: text('z'.repeat(1000)), method: 8 },
  { name: 'arch/empty', data: new Uint8Array(0) },
];

function assertSample(z: ZipReader): void {
  assert.deepEqual(z.entries.map((e) => e.name), SAMPLE.map((s) => s.name));
  for (const s of SAMPLE) assert.deepEqual(z.read(s.name), s.data, s.name);
}

/** Fails with an Error that names the archive (and matches pattern when given). */
function assertFails(bytes: Uint8Array, pattern?: RegExp, readAll = true): void {
  assert.throws(
    () => {
      const z = ZipReader.fromBuffer(bytes, 'test.zip');
      if (readAll) for (const e of z.entries) z.readEntry(e);
    },
    (e: unknown) => {
      assert.ok(e instanceof Error, String(e));
      assert.ok(e.message.startsWith('test.zip: '), e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

function patch(bytes: Uint8Array, at: number, value: number, width: 2 | 4 = 4): Uint8Array {
  const out = Uint8Array.from(bytes);
  const dv = new DataView(out.buffer);
  if (width === 2) dv.setUint16(at, value, true);
  else dv.setUint32(at, value, true);
  return out;
}

/** Offset of the (first) central directory entry, from a plain (non-zip64) EOCD without comment. */
const cdOffset = (z: Uint8Array): number => new DataView(z.buffer, z.byteOffset).getUint32(z.length - 22 + 16, true);

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'convkit-zip-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ZipReader: valid archives', () => {
  test("Python's zipfile: stored, deflated, UTF-8 names, folders and a comment", () => {
    const path = join(dir, 'py.zip');
    const script = String.raw`
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('a/stored.bin', bytes(range(256)) * 3)
    z.writestr(zipfile.ZipInfo('a/folder/'), b'')
    z.writestr('a/deflated.txt', 'hello ' * 500, compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('a/\u00fcnicode.txt', '\u00fc')
    z.comment = b'a comment'
`;
    execFileSync(PYTHON, ['-c', script, path]);
    const z = ZipReader.open(path);
    try {
      assert.deepEqual(z.entries.map((e) => e.name), ['a/stored.bin', 'a/folder/', 'a/deflated.txt', 'a/\u00fcnicode.txt']);
      assert.deepEqual(z.read('a/stored.bin'), Uint8Array.from({ length: 768 }, (_, i) => i & 0xff));
      assert.equal(Buffer.from(z.read('a/deflated.txt')).toString(), 'hello '.repeat(500));
      assert.equal(z.entry('a/deflated.txt')?.method, 8);
      assert.equal(Buffer.from(z.read('a/\u00fcnicode.txt')).toString(), '\u00fc');
      assert.equal(z.read('a/folder/').length, 0);
    } finally {
      z.close();
    }
  });

  test('plain, zip64 and commented archives, from a buffer and from a file', () => {
    for (const opts of [{}, { zip64: true }, { comment: 'PK\x05\x06 fake signature in a comment' }, { zip64: true, comment: 'c' }]) {
      const bytes = makeZip(SAMPLE, opts);
      assertSample(ZipReader.fromBuffer(bytes, 'test.zip'));
      const path = join(dir, 'w.zip');
      writeFileSync(path, bytes);
      const z = ZipReader.open(path);
      assertSample(z);
      assert.equal(z.size, bytes.length);
      z.close();
    }
  });

  test('an empty archive has no entries; unknown names are an error', () => {
    const z = ZipReader.fromBuffer(makeZip([]), 'test.zip');
    assert.equal(z.entries.length, 0);
    assert.throws(() => z.read('x'), /^Error: test\.zip: no entry 'x'$/);
  });

  test('a torch.save checkpoint lists its records', () => {
    const path = join(dir, 't.pt');
    execFileSync(PYTHON, ['-c', "import sys, torch; torch.save({'w': torch.ones(3)}, sys.argv[1])", path]);
    const z = ZipReader.open(path);
    assert.deepEqual(z.entries.map((e) => e.name), ['t/data.pkl', 't/data/0', 't/version']);
    assert.deepEqual(z.read('t/data/0'), new Uint8Array(new Float32Array([1, 1, 1]).buffer));
    z.close();
  });
});

describe('ZipReader: damaged and hostile archives', () => {
  const good = makeZip(SAMPLE);
  const cd = cdOffset(good);

  test('empty, short, garbage and non-zip files', () => {
    assertFails(new Uint8Array(0), /too short/);
    assertFails(new Uint8Array(21), /too short/);
    assertFails(new Uint8Array(5000), /no end of central directory record/);
    assertFails(text('just some text that is long enough to not be a zip at all'), /no end of central directory/);
  });

  test('every truncation fails', () => {
    for (let n = 0; n < good.length; n++) assertFails(good.subarray(0, n));
    const big = makeZip(SAMPLE, { zip64: true });
    for (let n = 0; n < big.length; n++) assertFails(big.subarray(0, n));
  });

  test('encrypted entries and unknown methods are refused', () => {
    assertFails(makeZip([{ name: 'x', data: text('a'), flags: 0x801 }]), /entry 'x' is encrypted/);
    assertFails(patch(good, cd + 10, 12, 2), /compression method 12; only stored \(0\) and deflate \(8\)/);
  });

  test('offsets and sizes outside the file are refused', () => {
    assertFails(patch(good, cd + 42, 0x7fffffff), /local header at 2147483647 is beyond the data area/);
    assertFails(patch(good, cd + 42, 1), /no local header signature at offset 1/);
    assertFails(patch(good, good.length - 22 + 16, 0x7fffff00), /central directory .* runs past its end record/);
    assertFails(patch(good, good.length - 22 + 12, 0x7fffff00), /runs past its end record/);
    assertFails(patch(good, good.length - 22 + 10, 5000, 2), /5000 entries cannot fit/);
    assertFails(patch(good, good.length - 22 + 10, 5, 2), /central directory ends inside entry 4|bad signature for central directory entry 4/);
    assertFails(makeZip([{ name: 'x', data: text('abc'), compressedSize: 1 << 20, size: 1 << 20 }]), /data \(1048576 bytes at offset 31\) runs past the data area/);
    assertFails(makeZip([{ name: 'x', data: text('abc'), compressedSize: 2 }]), /declares 2 bytes stored but 3 uncompressed/);
    assertFails(patch(good, cd + 28, 0xffff, 2), /runs past the directory/);
  });

  test('zip64 records that are missing or short are refused', () => {
    const z64 = makeZip(SAMPLE, { zip64: true });
    // EOCD sentinels without a locator before them:
    const plain = makeZip(SAMPLE);
    assertFails(patch(plain, plain.length - 22 + 16, 0xffffffff), /zip64 record that is missing/);
    // A locator pointing nowhere:
    const locator = z64.length - 22 - 20;
    assertFails(patch(z64, locator + 8, 0x7ffffff0), /zip64 end record offset \d+ is out of range/);
    assertFails(patch(z64, locator + 8, 0), /no zip64 end record signature at offset 0/);
    // A sentinel with no zip64 extra field (extra id renamed):
    const dv = new DataView(z64.buffer);
    const cd64 = dv.getUint32(dv.getUint32(locator + 8, true) + 48, true);
    assertFails(patch(z64, cd64 + 46 + SAMPLE[0].name.length, 0x9999, 2), /needs a zip64 extra field but has none/);
  });

  test('duplicate names, mismatched local names, multi-disk archives', () => {
    assertFails(makeZip([{ name: 'x', data: text('a') }, { name: 'x', data: text('b') }]), /duplicate entry 'x'/);
    const z = Uint8Array.from(good);
    z[30] ^= 0x20; // first local name 'arch/...' -> 'Arch/...'
    assertFails(z, /local header names 'Arch\/data\.pkl'/);
    assertFails(patch(good, good.length - 22 + 4, 1, 2), /multi-disk/);
  });

  test('corrupt data is caught by the CRC; deflate bombs and broken streams are refused', () => {
    const z = Uint8Array.from(good);
    z[30 + 'arch/data.pkl'.length] ^= 1;
    assertFails(z, /entry 'arch\/data\.pkl' is corrupt: CRC-32 mismatch/);
    assert.equal(ZipReader.fromBuffer(z, 'test.zip', { verifyCrc: false }).read('arch/data.pkl')[0], 'p'.charCodeAt(0) ^ 1);
    assertFails(makeZip([{ name: 'bomb', data: new Uint8Array(1 << 20), method: 8, size: 100 }]), /entry 'bomb': deflate data is corrupt/);
    assertFails(makeZip([{ name: 'short', data: new Uint8Array(1000), method: 8, size: 2000 }]), /inflated to 1000 bytes, expected 2000/);
    const broken = makeZip([{ name: 'd', data: text('q'.repeat(100)), method: 8 }]);
    broken[31] = 0xff;
    assertFails(broken, /entry 'd': deflate data is corrupt/);
  });

  test('any single corrupted byte reads back right or fails naming the archive', () => {
    for (const bytes of [good, makeZip(SAMPLE, { zip64: true })]) {
      for (let i = 0; i < bytes.length; i++) {
        for (const v of [0x00, 0xff, bytes[i] ^ 0x01]) {
          const z = Uint8Array.from(bytes);
          z[i] = v;
          try {
            const r = ZipReader.fromBuffer(z, 'test.zip');
            for (const e of r.entries) r.readEntry(e);
          } catch (e) {
            assert.ok(e instanceof Error && e.message.startsWith('test.zip: '), `byte ${i} = ${v}: ${String(e)}`);
          }
        }
      }
    }
  });

  test('the file reader closes its file on a failed open', () => {
    const path = join(dir, 'bad.zip');
    writeFileSync(path, new Uint8Array(100));
    for (let i = 0; i < 2000; i++) assert.throws(() => ZipReader.open(path), new RegExp(`^Error: ${path}: not a valid zip archive`));
    assert.deepEqual(readFileSync(path).length, 100);
  });
});
