import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  DatasetFileError,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  MNIST_CLASSES,
  encodeIdx,
  readIdx,
  readMnistSplit,
  type IdxArray,
} from '../../src/io/idx.js';

const haveFashion = existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
const noFashion = haveFashion ? false : `Fashion-MNIST not installed in ${FASHION_MNIST_DIR}`;

function histogram(labels: Uint8Array): number[] {
  const h = new Array<number>(10).fill(0);
  for (const l of labels) h[l]!++;
  return h;
}

function sum(a: Uint8Array, from = 0, to = a.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i]!;
  return s;
}

/** Asserts that `fn` throws a DatasetFileError naming `path` and matching every pattern. */
function assertFileError(fn: () => unknown, path: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetFileError, `expected DatasetFileError, got ${String(err)}`);
    assert.equal(err.path, path);
    assert.ok(err.message.includes(path), `message should name ${path}: ${err.message}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('Fashion-MNIST (the real files)', { skip: noFashion }, () => {
  it('reads the train split: 60000 images of 28x28, 6000 per class', () => {
    const s = readMnistSplit(FASHION_MNIST_DIR, 'train');
    assert.equal(s.count, 60000);
    assert.equal(s.height, 28);
    assert.equal(s.width, 28);
    assert.equal(s.images.length, 60000 * 28 * 28);
    assert.equal(s.labels.length, 60000);
    assert.deepEqual(histogram(s.labels), new Array(10).fill(6000));
    assert.deepEqual([...s.labels.subarray(0, 10)], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    // Sums computed once with Python's gzip module over the raw bytes.
    assert.equal(sum(s.images), 3431114169);
    assert.equal(sum(s.images, 0, 784), 76247);
  });

  it('reads the test split: 10000 images, 1000 per class', () => {
    const s = readMnistSplit(FASHION_MNIST_DIR, 'test');
    assert.equal(s.count, 10000);
    assert.deepEqual(histogram(s.labels), new Array(10).fill(1000));
    assert.deepEqual([...s.labels.subarray(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert.equal(sum(s.images), 573469082);
    assert.equal(sum(s.images, 0, 784), 33456);
  });

  it('reads a label file directly as 1-D uint8', () => {
    const a = readIdx(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
    assert.equal(a.dtype, 'uint8');
    assert.deepEqual(a.shape, [10000]);
  });
});

describe('class names', () => {
  it('lists Fashion-MNIST and MNIST classes', () => {
    assert.equal(FASHION_MNIST_CLASSES.length, 10);
    assert.equal(FASHION_MNIST_CLASSES[0], 'T-shirt/top');
    assert.equal(FASHION_MNIST_CLASSES[9], 'Ankle boot');
    assert.deepEqual([...MNIST_CLASSES], ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });
});

describe('idx files written here', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'convkit-idx-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const samples: IdxArray[] = [
    { dtype: 'uint8', shape: [2, 3], data: Uint8Array.from([0, 1, 127, 128, 254, 255]) },
    { dtype: 'int8', shape: [4], data: Int8Array.from([-128, -1, 0, 127]) },
    { dtype: 'int16', shape: [2, 2], data: Int16Array.from([-32768, -2, 258, 32767]) },
    { dtype: 'int32', shape: [3], data: Int32Array.from([-2147483648, 16909060, 2147483647]) },
    { dtype: 'float32', shape: [1, 2, 2], data: Float32Array.from([-1.5, 0, 3.25, Infinity]) },
    { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
  ];

  for (const sample of samples) {
    for (const gz of [false, true]) {
      it(`round-trips ${sample.dtype}${gz ? ' gzipped' : ''}`, () => {
        const bytes = encodeIdx(sample);
        const path = join(dir, `${sample.dtype}${gz ? '.gz' : ''}`);
        writeFileSync(path, gz ? gzipSync(bytes) : bytes);
        const back = readIdx(path);
        assert.equal(back.dtype, sample.dtype);
        assert.deepEqual(back.shape, sample.shape);
        assert.deepEqual([...back.data], [...sample.data]);
        assert.equal(back.data.byteOffset, 0);
      });
    }
  }

  it('reads big-endian data (bytes written by hand)', () => {
    const path = join(dir, 'be');
    // int16, 1-D of 2: 0x0102 = 258 and 0xfffe = -2.
    writeFileSync(path, Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]));
    assert.deepEqual([...readIdx(path).data], [258, -2]);
  });

  it('detects gzip by magic bytes, not by name', () => {
    const bytes = encodeIdx(samples[0]!);
    const gzNoName = join(dir, 'gzipped-but-named-plain');
    const plainGzName = join(dir, 'plain-but-named.gz');
    writeFileSync(gzNoName, gzipSync(bytes));
    writeFileSync(plainGzName, bytes);
    assert.deepEqual([...readIdx(gzNoName).data], [...samples[0]!.data]);
    assert.deepEqual([...readIdx(plainGzName).data], [...samples[0]!.data]);
  });

  it('accepts zero-length dimensions', () => {
    const path = join(dir, 'empty-dim');
    writeFileSync(path, encodeIdx({ dtype: 'uint8', shape: [0, 28, 28], data: new Uint8Array(0) }));
    assert.deepEqual(readIdx(path).shape, [0, 28, 28]);
  });
});

describe('corrupt and hostile idx files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'convkit-idx-bad-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, bytes: Uint8Array): string {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  }
  const good = encodeIdx({ dtype: 'uint8', shape: [2, 2], data: Uint8Array.from([1, 2, 3, 4]) });

  it('rejects a missing file', () => {
    const path = join(dir, 'nope');
    assertFileError(() => readIdx(path), path, /no such file/);
  });

  it('rejects an empty file and a short header', () => {
    assertFileError(() => readIdx(write('empty', new Uint8Array(0))), join(dir, 'empty'), /4-byte header/, /found 0/);
    const p = write('short', Uint8Array.from([0, 0, 8]));
    assertFileError(() => readIdx(p), p, /found 3 bytes/);
  });

  it('rejects bad magic bytes', () => {
    const bytes = good.slice();
    bytes[0] = 0x01;
    const p = write('magic', bytes);
    assertFileError(() => readIdx(p), p, /expected magic bytes 0x00 0x00, found 0x01 0x00/);
  });

  it('rejects an unknown type code', () => {
    const bytes = good.slice();
    bytes[2] = 0x0a;
    const p = write('type', bytes);
    assertFileError(() => readIdx(p), p, /type code/, /found 0x0a/);
  });

  it('rejects zero dimensions and a header cut short of its dimensions', () => {
    const p0 = write('ndims0', Uint8Array.from([0, 0, 8, 0, 1, 2, 3]));
    assertFileError(() => readIdx(p0), p0, /at least 1 dimension, found 0/);
    // Claims 3 dimensions (16-byte header) but has only 2 of them.
    const p3 = write('ndims3', Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1]));
    assertFileError(() => readIdx(p3), p3, /truncated idx header/, /expected 16 bytes for 3 dimensions, found 12/);
  });

  it('rejects dimensions whose product overflows', () => {
    const bytes = new Uint8Array(4 + 4 * 4);
    bytes[2] = 0x0e;
    bytes[3] = 4;
    bytes.fill(0xff, 4);
    const p = write('overflow', bytes);
    assertFileError(() => readIdx(p), p, /impossibly large/, /4294967295/);
  });

  it('rejects dimensions that claim more bytes than present', () => {
    const p = write('claims', encodeIdxHeaderOnly([60000, 28, 28], 10));
    assertFileError(() => readIdx(p), p, /truncated idx data/, /expected 47040000 data bytes/, /found 10/);
  });

  it('rejects a truncated payload and trailing garbage', () => {
    const pt = write('trunc', good.subarray(0, good.length - 1));
    assertFileError(() => readIdx(pt), pt, /truncated idx data: expected 4 data bytes for uint8 \[2, 2\], found 3/);
    const pg = write('trailing', Uint8Array.from([...good, 0xde, 0xad]));
    assertFileError(() => readIdx(pg), pg, /trailing bytes/, /expected 4 data bytes/, /found 6/);
  });

  it('rejects truncated and corrupt gzip', () => {
    const gz = gzipSync(encodeIdx({ dtype: 'uint8', shape: [1000], data: new Uint8Array(1000).fill(7) }));
    const pt = write('trunc.gz', gz.subarray(0, gz.length - 12));
    assertFileError(() => readIdx(pt), pt, /corrupt gzip data/, /unexpected end of file/);
    const bad = Buffer.from(gz);
    bad[bad.length - 6]! ^= 0xff; // the CRC32 of the trailer
    const pc = write('crc.gz', bad);
    assertFileError(() => readIdx(pc), pc, /corrupt gzip data/);
  });
});

// A uint8 header for `shape` followed by `payload` bytes of zeros.
function encodeIdxHeaderOnly(shape: number[], payload: number): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + payload);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return out;
}

describe('readMnistSplit on files written here', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'convkit-mnist-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  function makeSplit(name: string, opts: { labels?: number[]; images?: IdxArray; gzip?: boolean } = {}): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const labels = opts.labels ?? [3, 1, 4];
    const n = labels.length;
    const images: IdxArray = opts.images ?? {
      dtype: 'uint8',
      shape: [n, 4, 5],
      data: Uint8Array.from({ length: n * 20 }, (_, i) => i % 256),
    };
    const put = (file: string, a: IdxArray): void => {
      const bytes = encodeIdx(a);
      if (opts.gzip) writeFileSync(join(dir, `${file}.gz`), gzipSync(bytes));
      else writeFileSync(join(dir, file), bytes);
    };
    put('t10k-images-idx3-ubyte', images);
    put('t10k-labels-idx1-ubyte', { dtype: 'uint8', shape: [n], data: Uint8Array.from(labels) });
    return dir;
  }

  it('reads plain and gzipped splits of any image size', () => {
    for (const gzip of [false, true]) {
      const dir = makeSplit(`ok-${gzip}`, { gzip });
      const s = readMnistSplit(dir, 'test');
      assert.equal(s.count, 3);
      assert.equal(s.height, 4);
      assert.equal(s.width, 5);
      assert.deepEqual([...s.labels], [3, 1, 4]);
      assert.equal(s.images[59], 59);
    }
  });

  it('rejects a label of 10 or more, naming the file and index', () => {
    const dir = makeSplit('label10', { labels: [0, 9, 10, 2] });
    const path = join(dir, 't10k-labels-idx1-ubyte');
    assertFileError(() => readMnistSplit(dir, 'test'), path, /label at index 2/, /expected 0\.\.9, found 10/);
  });

  it('rejects images that are not 3-D uint8', () => {
    const d1 = makeSplit('int32', { images: { dtype: 'int32', shape: [3, 2, 2], data: new Int32Array(12) } });
    assertFileError(
      () => readMnistSplit(d1, 'test'),
      join(d1, 't10k-images-idx3-ubyte'),
      /expected images as 3-D uint8, found 3-D int32 \[3, 2, 2\]/,
    );
    const d2 = makeSplit('2d', { images: { dtype: 'uint8', shape: [3, 4], data: new Uint8Array(12) } });
    assertFileError(() => readMnistSplit(d2, 'test'), join(d2, 't10k-images-idx3-ubyte'), /found 2-D uint8/);
  });

  it('rejects label and image counts that disagree', () => {
    const dir = makeSplit('count', {
      labels: [1, 2],
      images: { dtype: 'uint8', shape: [3, 1, 1], data: new Uint8Array(3) },
    });
    assertFileError(() => readMnistSplit(dir, 'test'), join(dir, 't10k-labels-idx1-ubyte'), /expected 3 labels, found 2/);
  });

  it('says which files it looked for when a split is missing', () => {
    const dir = makeSplit('no-train');
    assertFileError(
      () => readMnistSplit(dir, 'train'),
      join(dir, 'train-images-idx3-ubyte.gz'),
      /train images not found/,
      /train-images-idx3-ubyte\.gz/,
    );
    const missing = join(root, 'does-not-exist');
    assert.throws(() => readMnistSplit(missing, 'test'), /does not exist.*t10k-images-idx3-ubyte/s);
    assert.throws(() => readMnistSplit(missing, 'test'), (e: Error) => !e.message.includes('apt-get'));
  });

  it('points at the Debian package when the default location is empty', { skip: haveFashion && 'dataset installed' }, () => {
    assert.throws(() => readMnistSplit(FASHION_MNIST_DIR, 'train'), /apt-get install dataset-fashion-mnist/);
  });
});
