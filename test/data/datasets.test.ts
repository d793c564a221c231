// Datasets: real Fashion-MNIST against its raw idx bytes, CIFAR binary files, an image folder
// with a corrupt file, synthetic data, and validation splits.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

import { stack, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { DatasetFileError, FASHION_MNIST_DIR } from '../../src/io/idx.js';
import {
  cifar10, cifar100, DataLoader, fashionMnist, imageFolder, splitValidation, synthetic,
  type Batch, type Dataset, type SkippedFile, type TensorDataset,
} from '../../src/data/index.js';

const nums = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
const free = (b: Batch): void => { b.x.dispose(); b.y.dispose(); };

describe('Fashion-MNIST (the real files)', () => {
  let train: TensorDataset;
  let test: TensorDataset;
  before(() => {
    train = fashionMnist({ split: 'train' });
    test = fashionMnist({ split: 'test' });
  });
  after(() => {
    train.dispose();
    test.dispose();
  });

  it('has 60000 / 10000 samples of 1x28x28 in 10 classes', () => {
    assert.equal(train.length, 60000);
    assert.equal(test.length, 10000);
    assert.deepEqual(train.inputShape, [1, 28, 28]);
    assert.equal(train.classes.length, 10);
    assert.equal(train.classes[9], 'Ankle boot');
  });

  // The first `bytes` bytes of a gzipped file, without inflating the rest (the train images are 47 MB).
  async function gunzipPrefix(path: string, bytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let have = 0;
    const stream = createReadStream(path).pipe(createGunzip());
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      have += (chunk as Buffer).length;
      if (have >= bytes) break;
    }
    stream.destroy();
    return Buffer.concat(chunks).subarray(0, bytes);
  }

  for (const split of ['train', 'test'] as const) {
    it(`${split}: a batch's pixels and labels are the raw idx bytes at those indices`, async () => {
      const ds = split === 'train' ? train : test;
      const prefix = split === 'train' ? 'train' : 't10k';
      // idx headers: 16 bytes for images (magic + 3 dims), 8 for labels (magic + 1 dim).
      const indices = split === 'train' ? [0, 1, 2999, 1234, 777, 1] : [0, 1, 9999, 4321, 777, 1];
      const last = Math.max(...indices) + 1;
      const images = await gunzipPrefix(join(FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`), 16 + last * 784);
      const labels = await gunzipPrefix(join(FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`), 8 + last);
      const b = ds.getBatch(indices) as Batch;
      assert.deepEqual(b.x.shape, [6, 1, 28, 28]);
      assert.equal(b.x.dtype, 'uint8');
      assert.equal(b.y.dtype, 'int64');
      const px = b.x.toTypedArray() as Uint8Array;
      indices.forEach((i, k) => {
        const want = images.subarray(16 + i * 784, 16 + (i + 1) * 784);
        assert.ok(Buffer.from(px.subarray(k * 784, (k + 1) * 784)).equals(want), `image ${i}`);
      });
      assert.deepEqual(nums(b.y), indices.map((i) => labels[8 + i]!));
      assert.deepEqual(indices.map((i) => ds.label(i)), indices.map((i) => labels[8 + i]!));
      free(b);
    });
  }

  it('rejects out-of-range indices naming the dataset', () => {
    assert.throws(() => test.getBatch([3, 10000]), /fashion-mnist\/test: sample index 10000 \(position 1 of the batch\) is out of range: expected an integer in \[0, 10000\)/);
  });

  it('a missing folder says where it looked and which package provides the data', () => {
    assert.throws(() => fashionMnist({ dir: '/nonexistent/fashion' }), (err: unknown) => {
      assert.ok(err instanceof DatasetFileError);
      assert.match(err.message, /\/nonexistent\/fashion/);
      assert.match(err.message, /looked for .*train-images-idx3-ubyte\.gz/);
      assert.match(err.message, /apt-get install dataset-fashion-mnist/);
      return true;
    });
  });
});

describe('CIFAR binary files', () => {
  let dir: string;
  // Record r of file f: label (r + f) % classes, pixels (r * 7 + f * 13 + i) & 255.
  const pixel = (f: number, r: number, i: number): number => (r * 7 + f * 13 + i) & 255;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'convkit-cifar-'));
    const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
    files.forEach((name, f) => {
      const buf = Buffer.alloc(3 * 3073);
      for (let r = 0; r < 3; r++) {
        buf[r * 3073] = (r + f) % 10;
        for (let i = 0; i < 3072; i++) buf[r * 3073 + 1 + i] = pixel(f, r, i);
      }
      writeFileSync(join(dir, name), buf);
    });
    const c100 = Buffer.alloc(2 * 3074);
    for (let r = 0; r < 2; r++) { c100[r * 3074] = 19 - r; c100[r * 3074 + 1] = 99 - r; }
    writeFileSync(join(dir, 'train.bin'), c100);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('cifar10 train has the five batches in order, as CHW uint8', () => {
    const ds = cifar10({ dir, split: 'train' });
    assert.equal(ds.length, 15);
    assert.deepEqual(ds.inputShape, [3, 32, 32]);
    assert.equal(ds.classes[0], 'airplane');
    const b = ds.getBatch([4, 14]) as Batch; // file 1 record 1, file 4 record 2
    const px = b.x.toTypedArray() as Uint8Array;
    for (let i = 0; i < 3072; i += 97) {
      assert.equal(px[i], pixel(1, 1, i));
      assert.equal(px[3072 + i], pixel(4, 2, i));
    }
    assert.deepEqual(nums(b.y), [2, 6]);
    free(b);
    ds.dispose();
  });

  it('cifar100 reads fine or coarse labels', () => {
    const fine = cifar100({ dir, split: 'train' });
    const coarse = cifar100({ dir, split: 'train', labelKind: 'coarse' });
    assert.deepEqual([fine.label(0), fine.label(1)], [99, 98]);
    assert.deepEqual([coarse.label(0), coarse.label(1)], [19, 18]);
    assert.equal(fine.classes.length, 100);
    assert.equal(coarse.classes.length, 20);
    fine.dispose();
    coarse.dispose();
  });

  it('a missing folder names what it looked for', () => {
    assert.throws(() => cifar10({ dir: join(dir, 'nope'), split: 'test' }), /CIFAR data not found: looked for .*test_batch\.bin/);
  });
});

describe('image folders', () => {
  let root: string;
  const RED = { r: 220, g: 30, b: 10 };
  const BLUE = { r: 5, g: 40, b: 230 };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'convkit-folder-'));
    mkdirSync(join(root, 'cat'));
    mkdirSync(join(root, 'dog'));
    const solid = (w: number, h: number, c: typeof RED) => sharp({ create: { width: w, height: h, channels: 3, background: c } });
    await solid(20, 16, RED).png().toFile(join(root, 'cat', 'a.png'));
    await solid(9, 30, RED).png().toFile(join(root, 'cat', 'b.png'));
    await solid(12, 12, RED).jpeg({ quality: 100 }).toFile(join(root, 'cat', 'c.jpg'));
    await solid(16, 16, BLUE).png().toFile(join(root, 'dog', 'a.png'));
    const jpeg = await solid(16, 16, BLUE).jpeg().toBuffer();
    writeFileSync(join(root, 'dog', 'broken.jpg'), jpeg.subarray(0, 40)); // truncated
    await solid(10, 14, BLUE).webp({ lossless: true }).toFile(join(root, 'dog', 'c.webp'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('decodes, labels by folder, and skips the corrupt file, reporting it by path once', async () => {
    const reported: SkippedFile[] = [];
    const ds = imageFolder({ root, size: [8, 8], onSkip: (f) => reported.push(f) });
    assert.equal(ds.length, 6);
    assert.deepEqual(ds.classes, ['cat', 'dog']);
    assert.deepEqual(ds.inputShape, [3, 8, 8]);
    const b = await ds.getBatch([0, 1, 2, 3, 4, 5]);
    assert.deepEqual(b.x.shape, [5, 3, 8, 8], 'the corrupt image is left out of the batch');
    assert.deepEqual(nums(b.y), [0, 0, 0, 1, 1]);
    const px = b.x.toTypedArray() as Uint8Array;
    assert.equal(px[0], RED.r);
    assert.equal(px[64], RED.g);
    assert.equal(px[4 * 192 + 128], BLUE.b);
    assert.equal(reported.length, 1);
    assert.equal(reported[0]!.path, join(root, 'dog', 'broken.jpg'));
    assert.match(reported[0]!.reason, /expected a complete JPEG file, found a corrupt or truncated one/);
    free(b);
    free(await ds.getBatch([4, 0]));
    assert.equal(reported.length, 1, 'reported once');
    assert.equal(ds.skipped.length, 1);
    assert.equal(ds.skipped[0]!.times, 2, 'but counted each time');
  });

  it('a loader epoch goes on past the corrupt file; grayscale decoding', async () => {
    const ds = imageFolder({ root, size: [6, 5], channels: 1, onSkip: () => undefined });
    const loader = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 3 });
    let seen = 0;
    for await (const b of loader.batches(0)) {
      assert.deepEqual(b.x.shape.slice(1), [1, 6, 5]);
      seen += b.x.size(0);
      free(b);
    }
    assert.equal(seen, 5);
    assert.equal(ds.skipped.length, 1);
  });
});

describe('synthetic', () => {
  it('has the requested shape, balanced labels in range, and depends only on the seed', () => {
    const a = synthetic({ count: 103, shape: [3, 12, 10], numClasses: 7, seed: 4 });
    const b = synthetic({ count: 103, shape: [3, 12, 10], numClasses: 7, seed: 4 });
    const c = synthetic({ count: 103, shape: [3, 12, 10], numClasses: 7, seed: 5 });
    assert.equal(a.length, 103);
    assert.deepEqual(a.inputShape, [3, 12, 10]);
    assert.equal(a.classes.length, 7);
    assert.equal(a.images.dtype, 'uint8');
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 103; i++) counts[a.label(i)]++;
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${counts}`);
    assert.ok(a.images.equal(b.images) && a.labels.equal(b.labels));
    assert.ok(!a.images.equal(c.images));
    for (const d of [a, b, c]) d.dispose();
  });

  it('is learnable: nearest class mean on held-out samples beats chance by far', () => {
    const ds = synthetic({ count: 600, shape: [1, 16, 16], numClasses: 10, seed: 1 });
    const acc = tidy(() => {
      const x = ds.images.float().flatten(1);
      const fitted = (k: number): number[] => Array.from({ length: 400 }, (_, i) => i).filter((i) => ds.label(i) === k);
      const centres = stack(Array.from({ length: 10 }, (_, k) => x.indexSelect(0, tensor(fitted(k))).mean(0)));
      const dist = x.narrow(0, 400, 200).unsqueeze(1).sub(centres.unsqueeze(0)).pow(2).sum(2);
      return dist.argmin(1).eq(ds.labels.narrow(0, 400, 200)).float().mean().item();
    });
    assert.ok(acc > 0.9, `accuracy ${acc}`);
    ds.dispose();
  });
});

describe('splitValidation', () => {
  let ds: TensorDataset;
  before(() => { ds = synthetic({ count: 1000, shape: [1, 4, 4], numClasses: 10, seed: 2 }); });
  after(() => ds.dispose());

  const classCounts = (d: Dataset): number[] => {
    const c = new Array(10).fill(0);
    for (let i = 0; i < d.length; i++) c[d.label(i)]++;
    return c;
  };

  it('stratified: disjoint, covering, each class in proportion, deterministic per seed', () => {
    const s = splitValidation(ds, 0.2, 42);
    assert.equal(s.val.length, 200);
    assert.equal(s.train.length, 800);
    const all = new Set([...s.trainIndices, ...s.valIndices]);
    assert.equal(all.size, 1000, 'disjoint and covering');
    assert.deepEqual(classCounts(s.val), new Array(10).fill(20));
    const again = splitValidation(ds, 0.2, 42);
    assert.deepEqual(again.valIndices, s.valIndices);
    const other = splitValidation(ds, 0.2, 43);
    assert.notDeepEqual(other.valIndices, s.valIndices);
    const b = s.val.getBatch([0, 5]) as Batch;
    const parent = ds.getBatch([s.valIndices[0]!, s.valIndices[5]!]) as Batch;
    assert.ok(b.x.equal(parent.x) && b.y.equal(parent.y), 'a split reads its parent at the mapped indices');
    free(b);
    free(parent);
  });

  it('plain: exact size, disjoint, covering, deterministic', () => {
    const s = splitValidation(ds, 0.15, 7, { stratified: false });
    assert.equal(s.val.length, 150);
    assert.equal(new Set([...s.trainIndices, ...s.valIndices]).size, 1000);
    assert.deepEqual(splitValidation(ds, 0.15, 7, { stratified: false }).valIndices, s.valIndices);
    assert.throws(() => splitValidation(ds, 1.5), /fraction must be in \(0, 1\)/);
  });
});
