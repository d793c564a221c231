// Deterministic memory: tidy() scopes, dispose, and a 2,000-step training loop whose resident
// memory stays flat.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import {
  F, Tensor, cacheInfo, cat, dispose, emptyCache, getNumThreads, manualSeed, noGrad, ones, randint, randn, setCacheLimit, setNumThreads, tensor, tensorCounts, tidy, zeros,
} from '../../src/engine/index.js';
import { native } from '../../src/engine/native.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('tidy', () => {
  test('disposes temporaries and keeps the returned tensor', () => {
    let a!: Tensor;
    let b!: Tensor;
    const out = tidy(() => {
      a = ones([3]);
      b = a.add(1);
      return b.mul(2);
    });
    assert.ok(a.isDisposed);
    assert.ok(b.isDisposed);
    assert.ok(!out.isDisposed);
    assert.deepEqual(out.toArray(), [4, 4, 4]);
    out.dispose();
  });

  test('tensors made outside the scope are left alone', () => {
    const outer = ones([2]);
    const r = tidy(() => outer.add(1).sum().item());
    assert.equal(r, 4);
    assert.ok(!outer.isDisposed);
    tidy(() => outer);
    assert.ok(!outer.isDisposed);
    outer.dispose();
  });

  test('nested tidy: the inner result moves to the outer scope', () => {
    let inner!: Tensor;
    let innerTemp!: Tensor;
    let returned!: Tensor;
    const out = tidy(() => {
      inner = tidy(() => {
        innerTemp = ones([2]);
        return innerTemp.add(1);
      });
      assert.ok(innerTemp.isDisposed);
      assert.ok(!inner.isDisposed);
      returned = tidy(() => tidy(() => inner.mul(3)));
      assert.ok(!returned.isDisposed);
      return returned.add(1);
    });
    assert.ok(inner.isDisposed, 'the inner result was disposed by the outer scope');
    assert.ok(returned.isDisposed);
    assert.deepEqual(out.toArray(), [7, 7]);
    out.dispose();
  });

  test('arrays, objects and maps of tensors are kept', () => {
    let temp!: Tensor;
    const r = tidy(() => {
      temp = zeros([1]);
      return { list: [ones([1]), [ones([2])]], nested: { t: ones([3]) }, map: new Map([['m', ones([4])]]), n: 5 };
    });
    assert.ok(temp.isDisposed);
    for (const t of [r.list[0] as Tensor, (r.list[1] as Tensor[])[0], r.nested.t, r.map.get('m')!]) assert.ok(!t.isDisposed);
    assert.equal(r.n, 5);
    dispose(r);
    assert.ok(r.nested.t.isDisposed && r.map.get('m')!.isDisposed && (r.list[0] as Tensor).isDisposed);
  });

  test('keep() survives the scope without being returned', () => {
    let kept!: Tensor;
    let temp!: Tensor;
    tidy(() => {
      kept = ones([2]).keep();
      temp = ones([2]);
      tidy(() => { kept.add(1); });
    });
    assert.ok(!kept.isDisposed);
    assert.ok(temp.isDisposed);
    kept.dispose();
  });

  test('fn throwing disposes everything it made, and the error propagates', () => {
    const made: Tensor[] = [];
    assert.throws(() => tidy(() => {
      made.push(ones([2]), randn([3, 3]));
      tidy(() => made.push(zeros([1])));
      made.push(randn([2, 3]).matmul(randn([2, 3]))); // throws
    }), /matmul/);
    assert.equal(made.length, 3);
    for (const t of made) assert.ok(t.isDisposed);
  });

  test('fn returning a Promise throws and disposes what it made', () => {
    let t!: Tensor;
    assert.throws(() => tidy(() => { t = ones([2]); return Promise.resolve(t); }), /Promise/);
    assert.ok(t.isDisposed);
    let u!: Tensor;
    assert.throws(() => tidy(async () => { u = ones([2]); return u; }), TypeError);
    assert.ok(u.isDisposed);
  });

  test('reading a grad inside tidy does not free the parameter grad', () => {
    const w = randn([3], { requiresGrad: true });
    tidy(() => w.mul(w).sum().backward());
    tidy(() => { assert.ok(w.grad); });
    tidy(() => { assert.ok(w.grad); });
    assert.ok(w.grad && !w.grad.isDisposed);
    w.dispose();
  });
});

describe('dispose', () => {
  test('a disposed tensor throws a clear error when used', () => {
    const x = ones([2, 2]);
    const y = ones([2, 2]);
    x.dispose();
    assert.ok(x.isDisposed);
    assert.throws(() => x.add(1), /disposed/);
    assert.throws(() => y.add(x), /disposed/);
    assert.throws(() => x.toArray(), /disposed/);
    assert.throws(() => cat([y, x]), /disposed/);
    assert.throws(() => F.relu(x), /disposed/);
    assert.throws(() => noGrad(() => y.add_(x)), /disposed/);
    assert.deepEqual(y.add(1).toArray(), [[2, 2], [2, 2]]);
    y.dispose();
  });

  test('dispose twice is fine', () => {
    const x = ones([2]);
    x.dispose();
    x.dispose();
    dispose([x, { x }]);
    assert.ok(x.isDisposed);
  });

  test('a view keeps its storage alive after its base is disposed', () => {
    const x = tensor([1, 2, 3, 4]);
    const v = x.view([2, 2]);
    x.dispose();
    assert.deepEqual(v.toArray(), [[1, 2], [3, 4]]);
    v.dispose();
  });
});

describe('the handle table', () => {
  test('a disposed tensor\'s id never reaches the tensor that reuses its slot', () => {
    const x = ones([2]);
    const stale = x.handle;
    x.dispose();
    const y = zeros([3]);
    assert.notEqual(y.handle, stale);
    assert.ok(native.isDisposed(stale));
    assert.throws(() => native.numel(stale), /numel: argument 0 is a disposed tensor/);
    native.dispose(stale); // a stale id is ignored: y lives on
    assert.deepEqual(y.toArray(), [0, 0, 0]);
    y.dispose();
  });

  test('bytes aliasing a tensor keep its memory after dispose()', () => {
    const x = tensor([1, 2, 3], { dtype: 'float32' });
    const bytes = x.bytesView();
    x.dispose();
    assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 3)), [1, 2, 3]);
  });

  test('setData swaps the native tensor and frees the old one', () => {
    const p = ones([2]).requiresGrad_(true);
    const src = tensor([5, 6], { dtype: 'float32' });
    const live = tensorCounts().live;
    p.setData(src);
    assert.equal(tensorCounts().live, live, 'one tensor in, one out');
    assert.deepEqual(p.toArray(), [5, 6]);
    assert.ok(p.requiresGrad);
    dispose([p, src]);
  });

  test('a tensor nobody disposes is freed once the garbage collector has its object', async () => {
    const before = tensorCounts();
    (() => { for (let i = 0; i < 10; i++) zeros([1000]); })();
    for (let i = 0; i < 20 && tensorCounts().collected - before.collected < 10; i++) {
      await turn(); // registers the new tensors with the backstop
      gc();
      await turn(); // runs its callbacks
    }
    const after = tensorCounts();
    assert.ok(after.collected - before.collected >= 10, `collected ${after.collected - before.collected} of 10`);
    assert.ok(after.live <= before.live, `live tensors ${before.live} -> ${after.live}`);
  });
});

// ---- the training loop ----------------------------------------------------------------------------

const STEPS = 2000;
const WARMUP = 200;
const BATCH = 16;

// A trainer awaits its data loader every step; this loop yields every YIELD_EVERY steps the
// same way. The 'fully synchronous loop' test below never yields.
const YIELD_EVERY = 10;
const rssMB = async (): Promise<number> => { gc(); await turn(); gc(); return process.memoryUsage().rss / 2 ** 20; };

function smallConvNet(batch: number) {
  const param = (shape: number[], scale: number): Tensor => randn(shape).mul(scale).requiresGrad_(true);
  const p = {
    w1: param([8, 1, 3, 3], 1 / 3),
    b1: zeros([8]).requiresGrad_(true),
    g1: ones([8]).requiresGrad_(true),
    be1: zeros([8]).requiresGrad_(true),
    w2: param([16, 8, 3, 3], 1 / Math.sqrt(72)),
    b2: zeros([16]).requiresGrad_(true),
    fw: param([10, 16], 1 / 4),
    fb: zeros([10]).requiresGrad_(true),
  };
  const params = Object.values(p);
  const runningMean = zeros([8]);
  const runningVar = ones([8]);
  const data = randn([batch, 1, 28, 28]);
  const labels = randint(0, 10, [batch]);
  const lr = 0.05;
  const step = (): number => tidy(() => {
    // fresh noise every step: new tensors to free each time
    const x = data.add(randn(data.shape).mul(0.1));
    let h = F.conv2d(x, p.w1, p.b1, { padding: 1 });
    h = F.batchNorm(h, runningMean, runningVar, { weight: p.g1, bias: p.be1, training: true, momentum: 0.1 });
    h = F.relu(h);
    h = F.relu(F.conv2d(h, p.w2, p.b2, { stride: 2, padding: 1 }));
    const logits = F.linear(F.adaptiveAvgPool2d(h, 1).flatten(1), p.fw, p.fb);
    const loss = F.crossEntropy(logits, labels);
    loss.backward();
    noGrad(() => {
      for (const w of params) {
        w.add_(w.grad!, -lr);
        w.grad = null;
      }
    });
    return loss.item();
  });
  const state = [...params, runningMean, runningVar, data, labels];
  return { step, state, runningVar };
}

// The same loop without ever yielding to the event loop. tidy() frees every tensor the step
// made at once: tensors are slots in the addon's handle table, not N-API objects whose
// finalizers would wait for the event loop (as they did before the table: ~10-150 KB a step).
// Neither the table nor resident memory may grow.
test('fully synchronous training loop (never yields to the event loop)', { timeout: 60_000 }, (t) => {
  const threads = getNumThreads();
  setNumThreads(1);
  t.after(() => setNumThreads(threads));
  manualSeed(5);
  const { step, state } = smallConvNet(BATCH);
  const rssSync = (): number => { gc(); return process.memoryUsage().rss / 2 ** 20; };
  for (let i = 0; i < 500; i++) step(); // the malloc heap and V8's settle in the first few hundred
  const before = rssSync();
  const liveBefore = tensorCounts().live;
  const n = 2000; // long enough that a one-off heap growth of a MB or so is not read as a trend
  for (let i = 0; i < n; i++) step();
  const growthKB = ((rssSync() - before) * 1024) / n;
  const liveAfter = tensorCounts().live;
  t.diagnostic(`resident memory grew ${growthKB.toFixed(1)} KB per step over ${n} synchronous steps; live tensors ${liveBefore} -> ${liveAfter}`);
  dispose(state);
  assert.equal(liveAfter, liveBefore, 'every tensor a step makes is freed by the end of the step');
  assert.ok(growthKB < 2, `resident memory grew ${growthKB.toFixed(1)} KB per step in a synchronous loop`);
});

test(`training loop: ${STEPS} steps of a small conv net keep resident memory flat`, { timeout: 120_000 }, async (t) => {
  // One intra-op thread: this net is far too small to gain from two, and OpenMP workers that
  // spin-wait make a loaded 2-core machine (other test files, builds) many times slower.
  const threads = getNumThreads();
  setNumThreads(1);
  t.after(() => setNumThreads(threads));
  manualSeed(3);
  const { step, state, runningVar } = smallConvNet(BATCH);
  const losses: number[] = [];
  const t0 = Date.now();
  let rssWarm = 0;
  for (let i = 1; i <= STEPS; i++) {
    losses.push(step());
    if (i % YIELD_EVERY === 0) await turn();
    if (i === WARMUP) rssWarm = await rssMB();
  }
  const rssEnd = await rssMB();
  const seconds = (Date.now() - t0) / 1000;
  const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
  const last = losses.slice(-50).reduce((a, b) => a + b) / 50;
  t.diagnostic(`${STEPS} steps in ${seconds.toFixed(1)} s; rss ${rssWarm.toFixed(1)} MB after step ${WARMUP}, ${rssEnd.toFixed(1)} MB after step ${STEPS} (+${(rssEnd - rssWarm).toFixed(1)} MB); loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);

  assert.ok(losses.every(Number.isFinite), 'loss stayed finite');
  assert.ok(last < first * 0.5, `loss should fall: first 10 steps ${first.toFixed(3)}, last 50 ${last.toFixed(3)}`);
  assert.ok(rssEnd - rssWarm < 20, `resident memory grew by ${(rssEnd - rssWarm).toFixed(1)} MB between step ${WARMUP} and step ${STEPS} (limit 20 MB)`);
  // the parameters and the running stats survived every scope
  for (const w of state) assert.ok(!w.isDisposed);
  assert.ok(tidy(() => runningVar.min().item()) > 0);
  dispose(state);
});

describe('CPU memory cache', () => {
  const MB = 2 ** 20;
  const block = (mb: number): Tensor => zeros([(mb * MB) / 4]);
  const info = cacheInfo();
  const skip = info.enabled ? false : 'CONVKIT_CACHING_ALLOCATOR=0';

  test('holds freed blocks for reuse, up to its limit, and gives them back', { skip }, (t) => {
    t.after(() => setCacheLimit(info.limit));
    emptyCache();
    assert.equal(cacheInfo().cachedBytes, 0);
    dispose([block(1), block(2)]);
    assert.ok(cacheInfo().cachedBytes >= 3 * MB, `cached ${cacheInfo().cachedBytes} bytes after freeing 3 MB`);
    // a request that fits a cached block takes it out of the cache
    const again = block(2);
    assert.ok(cacheInfo().cachedBytes < 2 * MB);
    again.dispose();
    emptyCache();
    assert.equal(cacheInfo().cachedBytes, 0);
  });

  test('a full cache drops its least recently freed blocks for new ones', { skip }, (t) => {
    t.after(() => setCacheLimit(info.limit));
    emptyCache();
    setCacheLimit(10 * MB);
    assert.equal(cacheInfo().limit, 10 * MB);
    // first 3 MB blocks (as in an fp32 epoch), then 1 MB blocks (a bf16 one): the stale sizes
    // must make room, or every 1 MB block would come fresh from the system
    dispose([block(3), block(3), block(3)]);
    dispose(Array.from({ length: 8 }, () => block(1)));
    const full = cacheInfo().cachedBytes;
    assert.ok(full <= 10 * MB, `the cache holds ${full} bytes, over its 10 MB limit`);
    // the 1 MB blocks are what the cache kept: asking for them again empties it by 8 MB
    const again = Array.from({ length: 8 }, () => block(1));
    const served = full - cacheInfo().cachedBytes;
    dispose(again);
    assert.ok(served >= 8 * MB, `only ${served / MB} MB of the eight 1 MB blocks came from the cache`);
    emptyCache();
  });

  test('lowering the limit trims the cache; a bad limit is refused', { skip }, (t) => {
    t.after(() => setCacheLimit(info.limit));
    dispose([block(2), block(2)]);
    setCacheLimit(MB);
    assert.ok(cacheInfo().cachedBytes <= MB);
    assert.throws(() => setCacheLimit(-1), /setCacheLimit: expected a byte count >= 0, got -1/);
    assert.throws(() => setCacheLimit(1.5), /got 1.5/);
  });
});
