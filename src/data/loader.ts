// The DataLoader: shuffled, batched, augmented, prefetched, and exactly reproducible.
//
// - The order of epoch e is a pure function of (seed, e) (a JS xoshiro128** shuffle), so
//   resuming at (epoch, startBatch) yields exactly the batches an uninterrupted run would.
// - The transform of batch b runs under libtorch's CPU generator seeded from (seed, e, b), and
//   the generator is restored afterwards: augmentation is reproducible per batch, independent
//   of what the training step draws (dropout), and needs nothing saved for resume.
// - Fetches run ahead (prefetch): while the consumer trains on batch b, batches b+1..b+prefetch
//   are being fetched; image folders decode on libuv's thread pool meanwhile. Transforms run in
//   order when a batch is handed out, on the main thread, where libtorch ops run anyway.
// - Ownership: a batch handed out belongs to the consumer (dispose it, or train inside tidy);
//   batches fetched but never handed out (early break) are disposed by the loader.
// - Each batch is handed out after one turn of the event loop (see nextMacrotask).

import { dispose, tidy } from '../engine/index.js';
import type { Batch, Dataset } from './dataset.js';
import { deriveSeed, Rng, withCpuSeed } from './rng.js';
import { disposeReplaced, type BatchTransform, type Transform } from './transform.js';
import { toBatchTransform, type TransformSpec } from './transforms.js';

export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Seeds the shuffles and the augmentation; default 0. */
  seed?: number;
  /** Drop the last, smaller batch (default false). */
  dropLast?: boolean;
  /** A transform, a spec, a list of them, or a function. */
  transform?: BatchTransform | Transform | TransformSpec | readonly (Transform | TransformSpec | BatchTransform)[];
  /** Whether the transform augments (true) or runs its evaluation form; default: the value of shuffle. */
  training?: boolean;
  /** Batches fetched ahead of the one being consumed; default 2. */
  prefetch?: number;
  /**
   * Data-parallel training: this process's share of every batch. batchSize stays the global
   * batch: batch b of the epoch is the same set of samples whatever the world size, and rank r
   * takes its samples r, r + worldSize, ... (a disjoint shard, reshuffled each epoch from the
   * seed, as PyTorch's DistributedSampler).
   */
  shard?: { rank: number; worldSize: number };
}

export interface LoaderBatch extends Batch {
  /** The batch's index within the epoch. */
  index: number;
  /** Sharded loaders: the samples in the global batch (every rank's share together). */
  globalSize?: number;
  /**
   * Sharded loaders: the global batch had fewer samples than ranks and this rank got none; it
   * holds one sample of another rank's share so that it can run the step, which must weigh 0.
   */
  padding?: boolean;
}

// With in-memory data every await resolves as a microtask, so a training loop would never give
// the event loop a turn: timers, I/O (a dashboard, signal handlers) and N-API finalizers would
// wait until the epoch ends. The finalizers matter most: until they run, the small native
// objects of disposed tensors fragment the heap and RSS grows with every batch. One macrotask
// turn per batch (a few microseconds) keeps memory flat and the process responsive.
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`DataLoader: ${what} must be a positive integer, got ${v}`);
  return v;
}

export class DataLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly training: boolean;
  readonly prefetch: number;
  readonly transform: BatchTransform | undefined;
  readonly shard: { rank: number; worldSize: number } | null;

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    this.dataset = dataset;
    this.batchSize = positiveInt(options.batchSize, 'batchSize');
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new RangeError(`DataLoader: seed must be a non-negative integer, got ${this.seed}`);
    this.dropLast = options.dropLast ?? false;
    this.training = options.training ?? this.shuffle;
    const prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new RangeError(`DataLoader: prefetch must be a non-negative integer, got ${prefetch}`);
    this.prefetch = prefetch;
    this.transform = options.transform === undefined ? undefined : toBatchTransform(options.transform, { numClasses: dataset.classes.length });
    if (dataset.length === 0) throw new RangeError(`DataLoader: ${dataset.name ?? 'the dataset'} is empty`);
    const sh = options.shard;
    if (sh !== undefined) {
      positiveInt(sh.worldSize, 'shard.worldSize');
      if (!Number.isInteger(sh.rank) || sh.rank < 0 || sh.rank >= sh.worldSize) throw new RangeError(`DataLoader: shard.rank must be an integer in [0, ${sh.worldSize}), got ${sh.rank}`);
    }
    this.shard = sh === undefined || sh.worldSize === 1 ? null : { rank: sh.rank, worldSize: sh.worldSize };
  }

  get numBatches(): number {
    const n = this.dataset.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The sample order of an epoch: a permutation when shuffling, else 0..N-1. */
  order(epoch: number): Int32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    if (!this.shuffle) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    return Rng.fromKeys(this.seed, epoch, 0x5a3f).permutation(this.dataset.length);
  }

  /** The dataset indices of batch `index` of an epoch (this rank's share when sharded). */
  batchIndices(epoch: number, index: number, order = this.order(epoch)): number[] {
    const global = this.globalBatchIndices(epoch, index, order);
    if (this.shard === null) return global;
    const { rank, worldSize } = this.shard;
    const mine = global.filter((_, i) => i % worldSize === rank);
    return mine.length > 0 ? mine : global.slice(-1);
  }

  /** The dataset indices of the whole batch `index` (every rank's share). */
  globalBatchIndices(epoch: number, index: number, order = this.order(epoch)): number[] {
    const start = index * this.batchSize;
    return Array.from(order.subarray(start, Math.min(start + this.batchSize, order.length)));
  }

  /** The seed of batch `index`'s augmentation in `epoch` (each rank draws its own). */
  batchSeed(epoch: number, index: number): number {
    return this.shard === null ? deriveSeed(this.seed, epoch, index, 0xa06) : deriveSeed(this.seed, epoch, index, 0xa06, this.shard.rank);
  }

  /**
   * The batches of an epoch from `startBatch` on. Each batch the loop receives is the loop's to
   * dispose; breaking out early disposes the batches fetched ahead.
   */
  batches(epoch: number, startBatch = 0): AsyncIterable<LoaderBatch> {
    const order = this.order(epoch);
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > this.numBatches) {
      throw new RangeError(`DataLoader: startBatch must be an integer in [0, ${this.numBatches}], got ${startBatch}`);
    }
    return { [Symbol.asyncIterator]: () => this.#run(epoch, startBatch, order) };
  }

  async *#run(epoch: number, startBatch: number, order: Int32Array): AsyncGenerator<LoaderBatch, void, undefined> {
    const pending = new Map<number, Promise<Batch>>();
    const fetch = (b: number): void => {
      if (b >= this.numBatches || pending.has(b)) return;
      const indices = this.batchIndices(epoch, b, order);
      const p = Promise.resolve().then(() => this.dataset.getBatch(indices));
      p.catch(() => undefined); // rejections surface when the batch is awaited, not as unhandled
      pending.set(b, p);
    };
    try {
      for (let b = startBatch; b < this.numBatches; b++) {
        for (let k = b; k <= b + this.prefetch; k++) fetch(k);
        await nextMacrotask();
        const raw = await pending.get(b)!;
        pending.delete(b);
        const batch = this.#prepare(raw, epoch, b);
        if (batch.x.size(0) === 0) {
          dispose(batch); // every file of the batch was unreadable: nothing to train on
          continue;
        }
        if (this.shard === null) {
          yield { x: batch.x, y: batch.y, index: b };
        } else {
          const globalSize = Math.min(this.batchSize, order.length - b * this.batchSize);
          yield { x: batch.x, y: batch.y, index: b, globalSize, padding: globalSize <= this.shard.rank };
        }
      }
    } finally {
      const left = [...pending.values()];
      pending.clear();
      for (const r of await Promise.allSettled(left)) if (r.status === 'fulfilled') dispose(r.value);
    }
  }

  #prepare(raw: Batch, epoch: number, index: number): Batch {
    const transform = this.transform;
    if (transform === undefined) return raw;
    let out: Batch;
    try {
      out = withCpuSeed(this.batchSeed(epoch, index), () => tidy(() => transform(raw, this.training)));
    } catch (err) {
      dispose(raw);
      throw err;
    }
    disposeReplaced(raw, out);
    return out;
  }
}
