// Seeded randomness: the JS generator's streams and state, derived seeds, per-batch seeding of
// libtorch's generator, and the Beta sampler behind mixup/cutmix.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { getRngState, manualSeed, rand } from '../../src/engine/index.js';
import { deriveSeed, Rng, sampleBeta, TorchDraws, withCpuSeed } from '../../src/data/index.js';

describe('Rng', () => {
  it('a stream is a pure function of its keys; the state saves and restores', () => {
    const a = Rng.fromKeys(7, 3);
    const b = Rng.fromKeys(7, 3);
    const c = Rng.fromKeys(7, 4);
    const sa = Array.from({ length: 20 }, () => a.nextUint32());
    assert.deepEqual(Array.from({ length: 20 }, () => b.nextUint32()), sa);
    assert.notDeepEqual(Array.from({ length: 20 }, () => c.nextUint32()), sa);
    const saved = a.getState();
    const next = Array.from({ length: 5 }, () => a.next());
    const resumed = Rng.fromState(JSON.parse(JSON.stringify(saved)));
    assert.deepEqual(Array.from({ length: 5 }, () => resumed.next()), next);
    assert.throws(() => Rng.fromKeys(-1), /non-negative safe integers/);
  });

  it('int is in range and roughly uniform; permutation is a permutation', () => {
    const r = Rng.fromKeys(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[r.int(6)]++;
    for (const n of counts) assert.ok(Math.abs(n - 10000) < 400, `counts ${counts}`);
    const p = Array.from(r.permutation(1000));
    assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    for (let i = 0; i < 1000; i++) {
      const u = r.next();
      assert.ok(u >= 0 && u < 1);
    }
  });

  it('deriveSeed gives distinct safe integers for nearby keys', () => {
    const seeds = new Set<number>();
    for (let e = 0; e < 10; e++) for (let b = 0; b < 100; b++) seeds.add(deriveSeed(5, e, b));
    assert.equal(seeds.size, 1000);
    for (const s of seeds) assert.ok(Number.isSafeInteger(s) && s >= 0);
    assert.equal(deriveSeed(5, 1, 2), deriveSeed(5, 1, 2));
  });
});

describe('libtorch generator helpers', () => {
  it('withCpuSeed reproduces draws and restores the generator', () => {
    manualSeed(3);
    const before = getRngState();
    const a = withCpuSeed(42, () => rand([4]).toArray());
    const b = withCpuSeed(42, () => rand([4]).toArray());
    assert.deepEqual(a, b);
    const after = getRngState();
    assert.ok(after.equal(before), 'the generator state is back');
    manualSeed(42);
    assert.deepEqual(rand([4]).toArray(), a, 'the same numbers as torch.manual_seed(42)');
    before.dispose();
    after.dispose();
  });

  it('sampleBeta has the right mean and stays in [0, 1]', () => {
    manualSeed(0);
    const draws = new TorchDraws();
    for (const [a, b] of [[0.2, 0.2], [1, 1], [2, 5]] as const) {
      let sum = 0;
      for (let i = 0; i < 3000; i++) {
        const v = sampleBeta(a, b, draws);
        assert.ok(v >= 0 && v <= 1);
        sum += v;
      }
      assert.ok(Math.abs(sum / 3000 - a / (a + b)) < 0.03, `Beta(${a}, ${b}) mean ${sum / 3000}`);
    }
  });
});
