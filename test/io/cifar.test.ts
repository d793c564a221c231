import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_CLASSES,
  CIFAR_IMAGE_BYTES,
  readCifar,
} from '../../src/io/cifar.js';
import { DatasetFileError } from '../../src/io/idx.js';

// Image `id`: pixel p of the image is (id * 7 + p) % 251, so each image and position is recognisable.
function pixel(id: number, p: number): number {
  return (id * 7 + p) % 251;
}

/** One CIFAR record: the label bytes, then the image of `id`. */
function record(labelBytes: number[], id: number): Uint8Array {
  const out = new Uint8Array(labelBytes.length + CIFAR_IMAGE_BYTES);
  out.set(labelBytes);
  for (let p = 0; p < CIFAR_IMAGE_BYTES; p++) out[labelBytes.length + p] = pixel(id, p);
  return out;
}

function writeRecords(path: string, records: Uint8Array[]): void {
  writeFileSync(path, Buffer.concat(records));
}

function assertFileError(fn: () => unknown, path: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetFileError, `expected DatasetFileError, got ${String(err)}`);
    assert.equal(err.path, path);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

function assertImage(images: Uint8Array, index: number, id: number): void {
  const base = index * CIFAR_IMAGE_BYTES;
  for (const p of [0, 1, 1023, 1024, 2048, 3071]) {
    assert.equal(images[base + p], pixel(id, p), `image ${index}, byte ${p}`);
  }
}

// Train batches hold 3, 2, 1, 2, 2 records; image ids run on across batches.
const BATCH_SIZES = [3, 2, 1, 2, 2];
const CIFAR10_TRAIN_LABELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

function writeCifar10(dir: string, meta?: string[]): void {
  mkdirSync(dir, { recursive: true });
  let id = 0;
  BATCH_SIZES.forEach((n, b) => {
    const recs = Array.from({ length: n }, () => record([CIFAR10_TRAIN_LABELS[id]!], id++));
    writeRecords(join(dir, `data_batch_${b + 1}.bin`), recs);
  });
  writeRecords(join(dir, 'test_batch.bin'), [record([9], 100), record([0], 101)]);
  if (meta) writeFileSync(join(dir, 'batches.meta.txt'), meta.join('\n') + '\n\n');
}

function writeCifar100(dir: string, withMeta: boolean): void {
  mkdirSync(dir, { recursive: true });
  writeRecords(join(dir, 'train.bin'), [record([19, 99], 0), record([0, 0], 1), record([4, 53], 2)]);
  writeRecords(join(dir, 'test.bin'), [record([7, 12], 50)]);
  if (withMeta) {
    writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `f${i}`).join('\n'));
    writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `c${i}`).join('\r\n'));
  }
}

describe('CIFAR-10', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'convkit-cifar10-'));
    writeCifar10(join(root, 'with-meta', 'cifar-10-batches-bin'), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    writeCifar10(join(root, 'no-meta'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads all five train batches in order, from the parent or the batches folder', () => {
    for (const dir of [join(root, 'with-meta'), join(root, 'with-meta', 'cifar-10-batches-bin')]) {
      const d = readCifar(dir, { variant: 'cifar10', split: 'train' });
      assert.equal(d.count, 10);
      assert.equal(d.images.length, 10 * 3 * 32 * 32);
      assert.deepEqual([...d.labels], CIFAR10_TRAIN_LABELS);
      for (let i = 0; i < 10; i++) assertImage(d.images, i, i);
      assert.deepEqual(d.classes, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
      assert.deepEqual([d.channels, d.height, d.width], [3, 32, 32]);
    }
  });

  it('reads the test batch and falls back to the standard class names', () => {
    const d = readCifar(join(root, 'no-meta'), { variant: 'cifar10', split: 'test' });
    assert.equal(d.count, 2);
    assert.deepEqual([...d.labels], [9, 0]);
    assertImage(d.images, 0, 100);
    assertImage(d.images, 1, 101);
    assert.deepEqual(d.classes, [...CIFAR10_CLASSES]);
    assert.equal(d.classes[0], 'airplane');
    assert.equal(d.classes[9], 'truck');
  });

  it('rejects a truncated batch, naming the file, its size and the record size', () => {
    const dir = join(root, 'truncated');
    writeCifar10(dir);
    const path = join(dir, 'data_batch_2.bin');
    writeRecords(path, [record([1], 0), record([1], 1).subarray(0, 100)]);
    assertFileError(
      () => readCifar(dir, { variant: 'cifar10', split: 'train' }),
      path,
      /file size 3173 bytes is not a positive multiple of the record size 3073/,
    );
  });

  it('rejects an empty batch', () => {
    const dir = join(root, 'empty');
    writeCifar10(dir);
    writeFileSync(join(dir, 'test_batch.bin'), new Uint8Array(0));
    assertFileError(() => readCifar(dir, { variant: 'cifar10', split: 'test' }), join(dir, 'test_batch.bin'), /size 0/);
  });

  it('rejects a label out of range, naming the file and record', () => {
    const dir = join(root, 'bad-label');
    writeCifar10(dir);
    const path = join(dir, 'data_batch_3.bin');
    writeRecords(path, [record([10], 0)]);
    assertFileError(
      () => readCifar(dir, { variant: 'cifar10', split: 'train' }),
      path,
      /label of record 0 is out of range: expected 0\.\.9, found 10/,
    );
  });

  it('names a missing batch and a missing dataset', () => {
    const dir = join(root, 'missing-batch');
    writeCifar10(dir);
    unlinkSync(join(dir, 'data_batch_4.bin'));
    assertFileError(() => readCifar(dir, { variant: 'cifar10', split: 'train' }), join(dir, 'data_batch_4.bin'), /ENOENT/);
    const nowhere = join(root, 'nowhere');
    assertFileError(
      () => readCifar(nowhere, { variant: 'cifar10', split: 'test' }),
      nowhere,
      /CIFAR data not found/,
      /test_batch\.bin or .*cifar-10-batches-bin\/test_batch\.bin/,
    );
  });

  it('rejects a meta file with the wrong number of names', () => {
    const dir = join(root, 'bad-meta');
    writeCifar10(dir, ['only', 'three', 'names']);
    assertFileError(
      () => readCifar(dir, { variant: 'cifar10', split: 'test' }),
      join(dir, 'batches.meta.txt'),
      /expected 10 class names, one per line, found 3/,
    );
  });

  it('rejects coarse labels for CIFAR-10', () => {
    assert.throws(
      () => readCifar(join(root, 'no-meta'), { variant: 'cifar10', split: 'test', labelKind: 'coarse' }),
      RangeError,
    );
  });
});

describe('CIFAR-100', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'convkit-cifar100-'));
    writeCifar100(join(root, 'meta', 'cifar-100-binary'), true);
    writeCifar100(join(root, 'plain'), false);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads fine labels by default and coarse labels on request', () => {
    const fine = readCifar(join(root, 'meta'), { variant: 'cifar100', split: 'train' });
    assert.equal(fine.count, 3);
    assert.deepEqual([...fine.labels], [99, 0, 53]);
    for (let i = 0; i < 3; i++) assertImage(fine.images, i, i);
    assert.equal(fine.classes.length, 100);
    assert.equal(fine.classes[99], 'f99');
    const coarse = readCifar(join(root, 'meta'), { variant: 'cifar100', split: 'train', labelKind: 'coarse' });
    assert.deepEqual([...coarse.labels], [19, 0, 4]);
    assert.deepEqual(coarse.classes, Array.from({ length: 20 }, (_, i) => `c${i}`));
  });

  it('falls back to the standard fine and coarse names', () => {
    const fine = readCifar(join(root, 'plain'), { variant: 'cifar100', split: 'test' });
    assert.deepEqual([...fine.labels], [12]);
    assertImage(fine.images, 0, 50);
    assert.deepEqual(fine.classes, [...CIFAR100_FINE_CLASSES]);
    const coarse = readCifar(join(root, 'plain'), { variant: 'cifar100', split: 'test', labelKind: 'coarse' });
    assert.deepEqual([...coarse.labels], [7]);
    assert.deepEqual(coarse.classes, [...CIFAR100_COARSE_CLASSES]);
  });

  it('has 100 distinct fine names in the sorted order of fine_label_names.txt, and 20 coarse', () => {
    assert.equal(new Set(CIFAR100_FINE_CLASSES).size, 100);
    assert.deepEqual([...CIFAR100_FINE_CLASSES], [...CIFAR100_FINE_CLASSES].sort());
    assert.equal(CIFAR100_FINE_CLASSES[0], 'apple');
    assert.equal(CIFAR100_FINE_CLASSES[99], 'worm');
    assert.equal(new Set(CIFAR100_COARSE_CLASSES).size, 20);
    assert.deepEqual([...CIFAR100_COARSE_CLASSES], [...CIFAR100_COARSE_CLASSES].sort());
  });

  it('rejects fine and coarse labels out of range', () => {
    const dir = join(root, 'bad');
    writeCifar100(dir, false);
    const path = join(dir, 'train.bin');
    writeRecords(path, [record([0, 0], 0), record([0, 0], 1), record([20, 100], 2)]);
    assertFileError(
      () => readCifar(dir, { variant: 'cifar100', split: 'train' }),
      path,
      /fine label of record 2 is out of range: expected 0\.\.99, found 100/,
    );
    assertFileError(
      () => readCifar(dir, { variant: 'cifar100', split: 'train', labelKind: 'coarse' }),
      path,
      /coarse label of record 2 is out of range: expected 0\.\.19, found 20/,
    );
  });

  it('rejects a truncated file with the CIFAR-100 record size', () => {
    const dir = join(root, 'trunc');
    writeCifar100(dir, false);
    const path = join(dir, 'test.bin');
    writeRecords(path, [record([0, 0], 0).subarray(0, 3000)]);
    assertFileError(() => readCifar(dir, { variant: 'cifar100', split: 'test' }), path, /size 3000 .* record size 3074/);
  });
});
