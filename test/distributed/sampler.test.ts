// The DataLoader's sharding (PyTorch's DistributedSampler, with the global batch fixed): each
// rank's share of a batch is disjoint from the others', together they are the batch one process
// would train on, the order changes every epoch with the seed, and a last batch smaller than the
// number of ranks pads the empty ranks with a sample marked as padding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataLoader, synthetic } from '../../src/data/index.js';

const data = synthetic({ count: 23, shape: [1, 2, 2], numClasses: 3, seed: 1 });
const loader = (shard?: { rank: number; worldSize: number }): DataLoader => new DataLoader(data, { batchSize: 8, shuffle: true, seed: 5, shard, prefetch: 0 });

test('shards are disjoint and together make the global batch, epoch after epoch', () => {
  const whole = loader();
  const ranks = [0, 1, 2].map((rank) => loader({ rank, worldSize: 3 }));
  for (const epoch of [0, 1]) {
    for (let b = 0; b < whole.numBatches; b++) {
      const parts = ranks.map((l) => l.batchIndices(epoch, b));
      const all = parts.flat();
      assert.equal(new Set(all).size, all.length, 'disjoint');
      assert.deepEqual([...all].sort((x, y) => x - y), [...whole.batchIndices(epoch, b)].sort((x, y) => x - y));
    }
    assert.equal(ranks[0].numBatches, whole.numBatches);
  }
  assert.notDeepEqual(ranks[1].batchIndices(0, 0), ranks[1].batchIndices(1, 0), 'reshuffled each epoch');
});

test('a last batch with fewer samples than ranks: padding on the empty ranks, marked', async () => {
  const l = new DataLoader(data, { batchSize: 11, shuffle: true, seed: 5, shard: { rank: 2, worldSize: 3 }, prefetch: 0 });
  const seen: { n: number; globalSize?: number; padding?: boolean }[] = [];
  for await (const b of l.batches(0)) {
    seen.push({ n: b.x.size(0), globalSize: b.globalSize, padding: b.padding });
    b.x.dispose();
    b.y.dispose();
  }
  // 23 = 11 + 11 + 1: rank 2 holds 3 + 3 of the first two and none of the last
  assert.deepEqual(seen, [{ n: 3, globalSize: 11, padding: false }, { n: 3, globalSize: 11, padding: false }, { n: 1, globalSize: 1, padding: true }]);
});

test('bad shards are refused naming the field', () => {
  assert.throws(() => loader({ rank: 3, worldSize: 3 }), /shard\.rank must be an integer in \[0, 3\), got 3/);
  assert.throws(() => loader({ rank: 0, worldSize: 0 }), /shard\.worldSize must be a positive integer/);
});
