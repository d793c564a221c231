// The DataLoader: deterministic shuffles, exact coverage, dropLast, exact resume mid-epoch (with
// random augmentation), prefetching, and disposal of prefetched batches on early exit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { getRngState, manualSeed, randn, tensor, type Tensor } from '../../src/engine/index.js';
import { compose, DataLoader, synthetic, type Batch, type BatchTransform, type Dataset } from '../../src/data/index.js';
import { liveTensors } from './live.js';

const live = liveTensors();

/** A dataset whose sample i is the image [[i]] with label i % 3; records every tensor it hands out. */
class IndexDataset implements Dataset {
  readonly name = 'index-dataset';
  readonly classes = ['a', 'b', 'c'];
  readonly inputShape: [number, number, number] = [1, 1, 1];
  readonly handedOut: Tensor[] = [];
  readonly calls: number[][] = [];
  constructor(readonly length: number, readonly delayMs = 0, readonly failOn?: number) {}
  label(i: number): number { return i % 3; }
  async getBatch(indices: readonly number[]): Promise<Batch> {
    this.calls.push([...indices]);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failOn !== undefined && indices.includes(this.failOn)) throw new Error(`cannot read sample ${this.failOn}`);
    const x = tensor(Float32Array.from(indices), { shape: [indices.length, 1, 1, 1] });
    const y = tensor(indices.map((i) => i % 3));
    this.handedOut.push(x, y);
    return { x, y };
  }
}

const values = (t: Tensor): number[] => Array.from(t.toTypedArray() as Float32Array);

async function epoch(loader: DataLoader, e: number, start = 0): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of loader.batches(e, start)) {
    out.push(values(b.x));
    b.x.dispose();
    b.y.dispose();
  }
  return out;
}

describe('DataLoader order', () => {
  it('numBatches with and without dropLast', () => {
    const ds = new IndexDataset(103);
    assert.equal(new DataLoader(ds, { batchSize: 10 }).numBatches, 11);
    assert.equal(new DataLoader(ds, { batchSize: 10, dropLast: true }).numBatches, 10);
    assert.throws(() => new DataLoader(ds, { batchSize: 0 }), /batchSize must be a positive integer, got 0/);
  });

  it('without shuffle: dataset order, last batch smaller', async () => {
    const batches = await epoch(new DataLoader(new IndexDataset(23), { batchSize: 5 }), 0);
    assert.deepEqual(batches.map((b) => b.length), [5, 5, 5, 5, 3]);
    assert.deepEqual(batches.flat(), Array.from({ length: 23 }, (_, i) => i));
  });

  it('shuffled: every index once per epoch; same seed same order; epochs and seeds differ', async () => {
    const ds = new IndexDataset(250);
    const a = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 9 });
    const b = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 9 });
    const c = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 10 });
    const e0 = (await epoch(a, 0)).flat();
    assert.deepEqual([...e0].sort((p, q) => p - q), Array.from({ length: 250 }, (_, i) => i), 'each index exactly once');
    assert.deepEqual((await epoch(b, 0)).flat(), e0, 'same seed, same order');
    const e1 = (await epoch(a, 1)).flat();
    assert.notDeepEqual(e1, e0, 'epochs differ');
    assert.deepEqual([...e1].sort((p, q) => p - q), Array.from({ length: 250 }, (_, i) => i));
    assert.notDeepEqual((await epoch(c, 0)).flat(), e0, 'seeds differ');
    assert.deepEqual(Array.from(a.order(3)), Array.from(b.order(3)), 'order(e) is a pure function of (seed, e)');
  });

  it('dropLast drops only the last partial batch', async () => {
    const loader = new DataLoader(new IndexDataset(23), { batchSize: 5, shuffle: true, seed: 1, dropLast: true });
    const batches = await epoch(loader, 2);
    assert.deepEqual(batches.map((b) => b.length), [5, 5, 5, 5]);
    const seen = batches.flat();
    assert.equal(new Set(seen).size, 20);
    assert.deepEqual(seen, Array.from(loader.order(2).subarray(0, 20)));
  });
});

describe('DataLoader resume', () => {
  it('startBatch gives exactly the tail of an uninterrupted epoch, augmentation included', async () => {
    const ds = synthetic({ count: 90, shape: [1, 12, 12], numClasses: 10, seed: 3 });
    const make = (): DataLoader => new DataLoader(ds, {
      batchSize: 16, shuffle: true, seed: 5,
      transform: [{ name: 'randomCrop', size: 12, padding: 2 }, { name: 'randomHorizontalFlip' }, { name: 'randAugment' }, { name: 'normalize', mean: [0.5], std: [0.25] }, { name: 'mixup', alpha: 0.4 }],
    });
    const collect = async (loader: DataLoader, start: number): Promise<Batch[]> => {
      const out: Batch[] = [];
      for await (const b of loader.batches(1, start)) {
        out.push({ x: b.x, y: b.y });
        randn([100]).dispose(); // the training step's own draws (dropout) must not shift augmentation
      }
      return out;
    };
    manualSeed(1);
    const full = await collect(make(), 0);
    manualSeed(999); // a resumed process has another global generator state
    const tail = await collect(make(), 4);
    assert.equal(full.length, 6);
    assert.equal(tail.length, 2);
    tail.forEach((b, k) => {
      assert.ok(b.x.equal(full[4 + k]!.x), `batch ${4 + k} images`);
      assert.ok(b.y.equal(full[4 + k]!.y), `batch ${4 + k} targets`);
    });
    assert.equal(full[0]!.y.dtype, 'float32', 'mixup made soft targets');
    for (const b of [...full, ...tail]) { b.x.dispose(); b.y.dispose(); }
    // Augmentation leaves the global generator where it was.
    manualSeed(4);
    const before = getRngState();
    for await (const b of make().batches(0)) { b.x.dispose(); b.y.dispose(); }
    const after = getRngState();
    assert.ok(after.equal(before));
    before.dispose();
    after.dispose();
    ds.dispose();
  });

  it('training defaults to shuffle and can be set', async () => {
    const flags: boolean[] = [];
    const spy: BatchTransform = (b, training) => { flags.push(training); return b; };
    const ds = new IndexDataset(4);
    await epoch(new DataLoader(ds, { batchSize: 4, transform: spy }), 0);
    await epoch(new DataLoader(ds, { batchSize: 4, shuffle: true, transform: spy }), 0);
    await epoch(new DataLoader(ds, { batchSize: 4, shuffle: true, training: false, transform: spy }), 0);
    assert.deepEqual(flags, [false, true, false]);
  });
});

describe('DataLoader prefetch and ownership', () => {
  it('gives the event loop a turn per batch, even for in-memory data', async () => {
    const ds = synthetic({ count: 40, shape: [1, 2, 2], numClasses: 2 });
    const loader = new DataLoader(ds, { batchSize: 10 });
    let turns = 0;
    const seen: number[] = [];
    const tick = (): void => { turns++; if (turns < 100) setImmediate(tick); };
    setImmediate(tick);
    for await (const b of loader.batches(0)) {
      seen.push(turns);
      b.x.dispose();
      b.y.dispose();
    }
    // Timers and finalizers run between batches: the counter advanced while the loop ran.
    assert.ok(seen.every((t, i) => i === 0 || t > seen[i - 1]!), `turns seen per batch: ${seen}`);
    ds.dispose();
  });

  it('fetches prefetch batches ahead while the consumer works', async () => {
    const ds = new IndexDataset(40, 5);
    const loader = new DataLoader(ds, { batchSize: 4, prefetch: 2 });
    const callsWhenReceived: number[] = [];
    for await (const b of loader.batches(0)) {
      callsWhenReceived.push(ds.calls.length);
      b.x.dispose();
      b.y.dispose();
      if (b.index === 3) break;
    }
    // On receiving batch b, batches up to b + 2 have been requested.
    assert.deepEqual(callsWhenReceived, [3, 4, 5, 6]);
  });

  it('an early break disposes the batches fetched ahead; received batches stay the consumer\'s', async () => {
    const ds = new IndexDataset(64, 2);
    const toFloat2 = compose([{ name: 'normalize', mean: [0], std: [2] }]); // replaces x: the raw x must be freed
    const loader = new DataLoader(ds, { batchSize: 8, prefetch: 3, transform: toFloat2 });
    const received: Batch[] = [];
    for await (const b of loader.batches(0)) {
      received.push(b);
      if (b.index === 1) break;
    }
    assert.equal(ds.handedOut.length / 2, 5, 'batches 0..4 were fetched (1 + prefetch 3)');
    const mine = new Set(received.flatMap((b) => [b.x, b.y]));
    for (const t of ds.handedOut) {
      if (mine.has(t)) assert.ok(!t.isDisposed, 'a received tensor is alive');
      else assert.ok(t.isDisposed, 'every other fetched tensor was disposed');
    }
    for (const b of received) {
      assert.ok(!b.x.isDisposed);
      b.x.dispose();
      b.y.dispose();
    }
  });

  it('a failing fetch rejects the loop with the dataset error and frees what was prefetched', async () => {
    const ds = new IndexDataset(40, 1, 21);
    const loader = new DataLoader(ds, { batchSize: 4, prefetch: 2 });
    const received: Tensor[] = [];
    await assert.rejects(async () => {
      for await (const b of loader.batches(0)) received.push(b.x, b.y);
    }, /cannot read sample 21/);
    assert.equal(received.length / 2, 5);
    const mine = new Set(received);
    for (const t of ds.handedOut) assert.equal(t.isDisposed, !mine.has(t));
    received.forEach((t) => t.dispose());
  });

  it('no tensor leaks: a full epoch and an early break with the full augmentation pipeline', async () => {
    const ds = synthetic({ count: 100, shape: [3, 16, 16], numClasses: 10, seed: 1 });
    const loader = new DataLoader(ds, {
      batchSize: 16, shuffle: true, seed: 2, prefetch: 3,
      transform: [
        { name: 'randomResizedCrop', size: 16 }, { name: 'randomHorizontalFlip' }, { name: 'randAugment' },
        { name: 'normalize', stats: 'cifar10' }, { name: 'randomErasing', value: 'random' }, { name: 'mixupCutmix' },
      ],
    });
    const before = live();
    for await (const b of loader.batches(0)) { b.x.dispose(); b.y.dispose(); }
    assert.equal(live(), before, 'after a full epoch');
    for await (const b of loader.batches(1)) {
      b.x.dispose();
      b.y.dispose();
      if (b.index === 2) break;
    }
    assert.equal(live(), before, 'after an early break');
    ds.dispose();
  });
});
