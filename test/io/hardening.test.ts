// What every reader does with hostile paths and declarations, with exact messages: special files
// refused before any read (a FIFO never blocks), decompression bounded by what headers declare,
// sizes and pixel counts over the limits named as such, deep JSON and long shapes in bounded
// messages; and the one atomic writer.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { encodeIdx, readIdx } from '../../src/io/idx.js';
import { readCifar } from '../../src/io/cifar.js';
import { decodeImage, MAX_IMAGE_PIXELS } from '../../src/io/images.js';
import { ZipReader } from '../../src/io/zip.js';
import { parseSafetensorsHeader, readSafetensors } from '../../src/io/safetensors.js';
import { checkInputFile, readInputFile, readInputFileAsync } from '../../src/io/files.js';
import { copyFileAtomic, writeAtomic, writeFileAtomic } from '../../src/io/atomic.js';
import { jsonDepth, parseJson } from '../../src/io/json.js';
import { formatShape } from '../../src/engine/format.js';
import { empty } from '../../src/engine/index.js';

const dir = fs.mkdtempSync(join(tmpdir(), 'convkit-harden-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

describe('special files are refused before they are read', () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);

  it('names the path and what it is, for every kind', () => {
    const cases: [string, RegExp][] = [
      [dir, /found a directory/],
      [fifo, /found a FIFO \(named pipe\)/],
      ['/dev/zero', /found a character device/],
      ['/dev/urandom', /found a character device/],
    ];
    for (const [p, kind] of cases) {
      if (!fs.existsSync(p)) continue;
      assert.throws(() => readInputFile(p, { what: 'idx file' }), (e: Error) => e.message.startsWith(`${p}: expected a regular file (idx file), `) && kind.test(e.message));
    }
  });

  it('in every reader, and a FIFO never blocks', async () => {
    assert.throws(() => readIdx(fifo), /fifo: expected a regular file \(idx file\), found a FIFO/);
    assert.throws(() => readSafetensors(fifo), /safetensors .*fifo: expected a regular file \(safetensors file\), found a FIFO/);
    assert.throws(() => ZipReader.open('/dev/zero'), /\/dev\/zero: expected a regular file \(zip archive\), found a character device/);
    await assert.rejects(decodeImage(fifo, { size: [4, 4] }), /fifo: cannot read image: expected a regular file \(image\), found a FIFO/);
    await assert.rejects(readInputFileAsync(dir), /expected a regular file \(file\), found a directory/);
  });

  it('with a size limit, says how big the file is', () => {
    const p = file('big', new Uint8Array(100));
    assert.equal(checkInputFile(p, { maxBytes: 100 }), 100);
    assert.throws(() => checkInputFile(p, { what: 'recipe', maxBytes: 99 }), /big: recipe is 100 bytes, more than the limit of 99 bytes/);
  });
});

describe('decompression is bounded by what the headers declare', () => {
  it('a gzipped idx file inflating past its header is refused', () => {
    const head = encodeIdx({ dtype: 'uint8', shape: [2], data: Uint8Array.of(1, 2) });
    const bomb = new Uint8Array(head.length + (20 << 20));
    bomb.set(head);
    const p = file('bomb.idx.gz', gzipSync(bomb));
    const rss = process.memoryUsage().rss;
    assert.throws(() => readIdx(p), /bomb\.idx\.gz: gzip data inflates to more than the 10 bytes its idx header declares \(uint8 \[2\]\)/);
    assert.ok(process.memoryUsage().rss - rss < 15 << 20, 'the bomb was inflated');
  });

  it('an idx header declaring more than the limit is refused before inflating', () => {
    const huge = Uint8Array.from([0, 0, 0x0d, 2, 0, 1, 0, 0, 0, 1, 0, 0]);
    assert.throws(() => readIdx(file('huge.gz', gzipSync(huge))), /idx header declares float32 \[65536, 65536\]: 17179869196 bytes, more than the limit of 2147483648/);
    // the gzipped file still reads when it is honest
    const ok = encodeIdx({ dtype: 'int16', shape: [2, 2], data: Int16Array.of(1, -2, 3, -4) });
    assert.deepEqual([...readIdx(file('ok.gz', gzipSync(ok))).data], [1, -2, 3, -4]);
  });

  it('a zip entry declaring more than the caller allows is refused before inflating', () => {
    const data = new Uint8Array(1 << 20);
    const z = zipOf('e', data);
    const r = ZipReader.fromBuffer(z, 'bomb.zip');
    assert.throws(() => r.read('e', 1000), /bomb\.zip: entry 'e' declares 1048576 bytes uncompressed, more than the 1000 bytes it may hold/);
    assert.equal(r.read('e', 1 << 20).length, 1 << 20);
  });
});

/** A zip of one deflated entry. */
function zipOf(name: string, data: Uint8Array): Uint8Array {
  const comp = deflateRawSync(data);
  const nameBytes = Buffer.from(name);
  // the local and the central header share these fields, 2 bytes further on in the central one
  const header = (size: number, signature: number, at: number): Buffer => {
    const b = Buffer.alloc(size);
    b.writeUInt32LE(signature, 0);
    b.writeUInt16LE(8, at);
    b.writeUInt32LE(crc32(data) >>> 0, at + 6);
    b.writeUInt32LE(comp.length, at + 10);
    b.writeUInt32LE(data.length, at + 14);
    b.writeUInt16LE(nameBytes.length, at + 18);
    return b;
  };
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(1, 8);
  eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(46 + nameBytes.length, 12);
  eocd.writeUInt32LE(30 + nameBytes.length + comp.length, 16);
  return Buffer.concat([header(30, 0x04034b50, 8), nameBytes, comp, header(46, 0x02014b50, 10), nameBytes, eocd]);
}

describe('limits named as limits', () => {
  it('a CIFAR batch over 1 GiB is refused by its size, before any read', () => {
    const d = join(dir, 'cifar');
    fs.mkdirSync(d);
    const fd = fs.openSync(join(d, 'test_batch.bin'), 'w');
    fs.ftruncateSync(fd, 3 * 2 ** 30); // sparse: no disk used
    fs.closeSync(fd);
    assert.throws(() => readCifar(d, { variant: 'cifar10', split: 'test' }), /test_batch\.bin: CIFAR batch is 3221225472 bytes, more than the limit of 1073741824 bytes/);
    fs.rmSync(join(d, 'test_batch.bin'));
    fs.mkdirSync(join(d, 'test_batch.bin'));
    assert.throws(() => readCifar(d, { variant: 'cifar10', split: 'test' }), /test_batch\.bin: expected a regular file \(CIFAR batch\), found a directory/);
  });

  it('an image above the pixel limit says so, with its size', async () => {
    const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } }).png().toBuffer());
    // IHDR's width and height (and its CRC) rewritten: the header declares 20000 x 20000
    png.writeUInt32BE(20000, 16);
    png.writeUInt32BE(20000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
    const p = file('huge.png', png);
    await assert.rejects(decodeImage(p, { size: [4, 4] }), new RegExp(`huge\\.png: cannot decode image: too large: 20000 x 20000 pixels, limit ${MAX_IMAGE_PIXELS}`));
  });
});

describe('bounded messages', () => {
  it('a safetensors header nested 100,000 deep is refused without a stack overflow', () => {
    const json = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const b = Buffer.alloc(8 + json.length);
    b.writeBigUInt64LE(BigInt(json.length));
    b.write(json, 8);
    const p = file('deep.safetensors', b);
    assert.throws(() => parseSafetensorsHeader(p), (e: Error) => /deep\.safetensors: the header is not valid JSON \(JSON nested deeper than the limit of 8 levels\)/.test(e.message) && e.message.length < 400);
  });

  it('jsonDepth skips strings and escapes', () => {
    assert.equal(jsonDepth('{"a": "[[[\\"[[", "b": [[1]]}'), 3);
    assert.equal(parseJson('[[1]]', 2) instanceof Array, true);
    assert.throws(() => parseJson('[[[1]]]', 2), /nested deeper than the limit of 2 levels/);
  });

  it('a shape of 100,000 dims is described in a few dozen characters', () => {
    const shape = new Array<number>(100_000).fill(1);
    assert.equal(formatShape(shape), '[1, 1, 1, 1, 1, 1, 1, 1, ... (100000 dims)]');
    assert.equal(formatShape([2, 3]), '[2, 3]');
    assert.throws(() => empty([1, 2, 'x' as unknown as number]), /empty: shape must be an array of non-negative integers, but element 2 is "x" in \[1, 2, "x"\]/);
    const t = empty([2, 3]);
    assert.throws(() => t.reshape([3, 'x' as unknown as number]), /reshape: argument 1 must be an array of integers, but element 1 is a string/);
    assert.throws(() => t.reshape([3, 2.5]), /reshape: argument 1 must be an array of integers, but element 1 is 2\.5/);
    t.dispose();
    const bad = [...shape, -1];
    assert.throws(() => empty(bad), (e: Error) => /element 100000 is -1 in \[1, 1, 1, 1, 1, 1, 1, 1, \.\.\. \(100001 dims\)\]/.test(e.message) && e.message.length < 200);
  });
});

describe('the atomic writer', () => {
  it('writes, replaces and copies whole files, leaving no temp file', () => {
    const p = join(dir, 'atomic', 'a.txt');
    writeFileAtomic(p, 'one');
    writeFileAtomic(p, new Uint8Array([0x74, 0x77, 0x6f]));
    assert.equal(fs.readFileSync(p, 'utf8'), 'two');
    const big = Buffer.alloc(20 << 20, 7);
    writeFileAtomic(join(dir, 'atomic', 'big'), big);
    copyFileAtomic(join(dir, 'atomic', 'big'), join(dir, 'atomic', 'copy'));
    assert.ok(fs.readFileSync(join(dir, 'atomic', 'copy')).equals(big));
    assert.deepEqual(fs.readdirSync(join(dir, 'atomic')).sort(), ['a.txt', 'big', 'copy']);
  });

  it('a failing write leaves the old file and no temp file', () => {
    const p = join(dir, 'atomic', 'a.txt');
    assert.throws(() => writeAtomic(p, () => { throw new Error('disk full'); }), /disk full/);
    assert.equal(fs.readFileSync(p, 'utf8'), 'two');
    assert.deepEqual(fs.readdirSync(join(dir, 'atomic')).sort(), ['a.txt', 'big', 'copy']);
  });
});
