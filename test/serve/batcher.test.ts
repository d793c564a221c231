// The dynamic batcher on a runner the test controls: batches leave when full or when the oldest
// request has waited out the delay, only to a free worker; results are split back per request;
// a full queue refuses at once; an aborted request leaves the queue; drain sends what is left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, BatchError, type BatchRunner } from '../../src/serve/index.js';

/** A runner with `workers` slots whose batches finish when the test says; outputs = inputs x 10 (one value per sample). */
function manual(workers: number): BatchRunner & { batches: number[][]; finish(): void } {
  const pending: (() => void)[] = [];
  const r = {
    batches: [] as number[][],
    busy: 0,
    get idle() { return workers - r.busy; },
    run(data: Float32Array, dims: number[]) {
      r.busy++;
      r.batches.push(Array.from(data));
      return new Promise<{ data: Float32Array; dims: number[] }>((resolve) => {
        pending.push(() => { r.busy--; resolve({ data: data.map((v) => v * 10), dims }); });
      });
    },
    finish() { pending.shift()?.(); },
  };
  return r;
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const one = (v: number): Float32Array => Float32Array.of(v);

test('a full batch leaves at once; a partial one after the delay; each request gets its own rows', async () => {
  const r = manual(1);
  const sizes: number[] = [];
  const b = new Batcher(r, { maxBatch: 4, maxDelayMs: 60, maxQueue: 10, sampleShape: [1], onBatch: (n) => sizes.push(n) });
  const a = b.submit(Float32Array.of(1, 2), 2);
  const c = b.submit(one(3), 1);
  await tick(5);
  assert.equal(r.batches.length, 0); // 3 of 4 samples: waits
  const d = b.submit(one(4), 1);
  await tick();
  assert.deepEqual(r.batches, [[1, 2, 3, 4]]);
  r.finish();
  assert.deepEqual(Array.from((await a).data), [10, 20]);
  assert.deepEqual((await a).dims, [2, 1]);
  assert.deepEqual(Array.from((await c).data), [30]);
  assert.deepEqual(Array.from((await d).data), [40]);
  const t0 = performance.now();
  const e = b.submit(one(5), 1);
  await tick(20);
  assert.equal(r.batches.length, 1);
  await tick(60);
  assert.equal(r.batches.length, 2);
  assert.ok(performance.now() - t0 >= 59);
  r.finish();
  assert.deepEqual(Array.from((await e).data), [50]);
  assert.deepEqual(sizes, [4, 1]);
});

test('while the worker is busy the queue fills into the next batch; a request never splits; the queue limit refuses at once', async () => {
  const r = manual(1);
  const b = new Batcher(r, { maxBatch: 3, maxDelayMs: 0, maxQueue: 3, sampleShape: [1] });
  const first = b.submit(one(1), 1);
  await tick();
  assert.deepEqual(r.batches, [[1]]);
  const waiting = [b.submit(Float32Array.of(2, 3), 2), b.submit(Float32Array.of(4, 5), 2), b.submit(one(6), 1)];
  assert.equal(b.depth, 3);
  await assert.rejects(b.submit(one(7), 1), (e: unknown) => e instanceof BatchError && e.code === 'queue-full' && /3 requests waiting/.test(e.message));
  await assert.rejects(b.submit(Float32Array.of(1, 2, 3, 4), 4), /1 to 3 samples \(the max batch\), got 4/);
  await assert.rejects(b.submit(Float32Array.of(1, 2), 1), /1 samples need 1 values, got 2/);
  r.finish();
  await first;
  await tick();
  // [2, 3] and [4, 5] would make 4 > 3: the second waits for the next batch
  assert.deepEqual(r.batches[1], [2, 3]);
  r.finish();
  await tick();
  assert.deepEqual(r.batches[2], [4, 5, 6]);
  r.finish();
  assert.deepEqual((await Promise.all(waiting)).map((x) => Array.from(x.data)), [[20, 30], [40, 50], [60]]);
});

test('an aborted request leaves the queue; drain sends the rest without waiting and then refuses', async () => {
  const r = manual(1);
  const b = new Batcher(r, { maxBatch: 8, maxDelayMs: 10_000, maxQueue: 8, sampleShape: [1] });
  const ac = new AbortController();
  const dropped = b.submit(one(1), 1, ac.signal);
  const kept = b.submit(one(2), 1);
  ac.abort();
  await assert.rejects(dropped, (e: unknown) => e instanceof BatchError && e.code === 'timeout');
  assert.equal(b.depth, 1);
  const drained = b.drain();
  await tick();
  assert.deepEqual(r.batches, [[2]]); // left without waiting out the 10 s
  await assert.rejects(b.submit(one(3), 1), (e: unknown) => e instanceof BatchError && e.code === 'closed');
  let over = false;
  void drained.then(() => { over = true; });
  await tick();
  assert.equal(over, false);
  r.finish();
  assert.deepEqual(Array.from((await kept).data), [20]);
  await drained;
});
