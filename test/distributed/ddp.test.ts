// Data-parallel training with real processes on loopback: 2 processes with half the batch each
// end with the weights of 1 process with the whole batch (plain, with gradient accumulation
// under noSync, with SyncBatchNorm, with gradients as bucket views or copied out of them), and
// within float16's rounding of them with the fp16 comm hook; a killed worker, a stuck one, a
// rendezvous that never completes and a port in use each end in an error that says so, within a
// timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Procs, WORKER, freePort, within } from './helpers.js';

interface Result { params: Record<string, number[]>; buffers: Record<string, number[]>; buckets: number[]; gradsShareBucket: boolean }

const maxDiff = (a: Record<string, number[]>, b: Record<string, number[]>): number => {
  assert.deepEqual(Object.keys(a), Object.keys(b));
  let d = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) d = Math.max(d, Math.abs(a[k][i] - b[k][i]));
  return d;
};

/** The largest difference in any tensor, relative to that tensor's largest magnitude. */
const maxRelDiff = (a: Record<string, number[]>, b: Record<string, number[]>): number => {
  let d = 0;
  for (const k of Object.keys(a)) {
    const scale = Math.max(...a[k].map(Math.abs));
    d = Math.max(d, maxDiff({ [k]: a[k] }, { [k]: b[k] }) / scale);
  }
  return d;
};

async function job(t: { after: (fn: () => Promise<void>) => void }, world: number, env: Record<string, string>): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-ddp-'));
  const procs = new Procs();
  t.after(async () => {
    await procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const ps = world === 1
    ? [procs.spawn((await import('./helpers.js')).WORKER, [], { ...env, WORLD_SIZE: '1', CK_OUT: join(dir, 'r0.json') })]
    : Array.from({ length: world }, (_, r) => procs.worker(r, world, port, { ...env, CK_OUT: join(dir, `r${r}.json`) }));
  const codes = await within(60_000, Promise.all(ps.map((p) => p.done)), 'workers');
  codes.forEach((c, r) => assert.equal(c, 0, `rank ${r} exited with ${c}: ${ps[r].stderr}`));
  if (world === 2) {
    for (const p of ps) assert.match(p.stdout, /collectives \[3,20,1,1\]/, 'async all-reduce and broadcast');
    const ticks = Number(/ticks while waiting (\d+)/.exec(ps[0].stdout)?.[1]);
    assert.ok(ticks >= 5, `timers ran ${ticks} times while rank 0 waited 300 ms for rank 1`);
  }
  return ps.map((_, r) => JSON.parse(readFileSync(join(dir, `r${r}.json`), 'utf8')) as Result);
}

for (const model of ['plain', 'syncbn'] as const) {
  test(`2 processes with batch 8/2 each end with the weights of 1 process with batch 8 (${model})`, async (t) => {
    const env = { CK_MODEL: model, CK_STEPS: '3', CK_BATCH: '8' };
    const [one] = await job(t, 1, env);
    const two = await job(t, 2, env);
    assert.equal(maxDiff(two[0].params, two[1].params), 0, 'ranks hold the same weights');
    const d = maxDiff(one.params, two[0].params);
    assert.ok(d < 1e-5, `max |w1 - w2| = ${d}`);
    if (model === 'syncbn') {
      // running statistics over the global batch, as one process computes them
      assert.ok(Object.keys(one.buffers).length === 2);
      assert.ok(maxDiff(one.buffers, two[0].buffers) < 1e-5);
    }
    assert.ok(two[0].buckets.length >= 1);
    assert.ok(two[0].gradsShareBucket, 'gradients are bucket views by default');
  });
}

test('noSync: micro-batches accumulated locally, reduced once, give the same weights', async (t) => {
  const env = { CK_MODEL: 'plain', CK_STEPS: '3', CK_BATCH: '8' };
  const [one] = await job(t, 1, env);
  const two = await job(t, 2, { ...env, CK_ACCUMULATE: '2' });
  const d = maxDiff(one.params, two[0].params);
  assert.ok(d < 1e-5, `max |w1 - w2| = ${d}`);
});

// c10d's paths with gradients as bucket views: a fresh gradient (zeroGrad to null) copied into
// its bucket and the grad pointed there; backward accumulating into the bucket itself (zeroGrad
// to zeros, and noSync's micro-batches on top); and, the option off, the copy back out
for (const [view, zero, accumulate] of [['1', 'none', '1'], ['1', 'zeros', '2'], ['0', 'none', '1'], ['0', 'zeros', '2']] as const) {
  test(`gradientAsBucketView ${view === '1'}, zeroGrad to ${zero}${accumulate !== '1' ? ', noSync' : ''}: the weights of 1 process`, async (t) => {
    const env = { CK_MODEL: 'plain', CK_STEPS: '3', CK_BATCH: '8', CK_ZERO_GRAD: zero };
    const [one] = await job(t, 1, env);
    const two = await job(t, 2, { ...env, CK_BUCKET_VIEW: view, CK_ACCUMULATE: accumulate });
    assert.equal(two[0].gradsShareBucket, view === '1', 'the grads are views into the bucket');
    assert.equal(maxDiff(two[0].params, two[1].params), 0, 'ranks hold the same weights');
    const d = maxDiff(one.params, two[0].params);
    assert.ok(d < 1e-5, `max |w1 - w2| = ${d}`);
  });
}

test('the fp16 comm hook: weights within float16\'s rounding of the float32 all-reduce\'s', async (t) => {
  const env = { CK_MODEL: 'plain', CK_STEPS: '3', CK_BATCH: '8' };
  const exact = await job(t, 2, env);
  const half = await job(t, 2, { ...env, CK_COMM_HOOK: 'fp16' });
  assert.equal(maxDiff(half[0].params, half[1].params), 0, 'ranks hold the same weights');
  const d = maxRelDiff(exact[0].params, half[0].params);
  assert.ok(d > 0, 'the gradients went through float16');
  // float16 keeps 11 significant bits (relative rounding 2^-11 = 4.9e-4) of each averaged gradient
  assert.ok(d < 1e-3, `max |w32 - w16| / max |w32| = ${d}`);
});

test('torchrun starts the workers unchanged (its agent hosts the store)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-torchrun-'));
  const procs = new Procs();
  t.after(async () => {
    await procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const env = { CK_MODEL: 'plain', CK_STEPS: '3', CK_BATCH: '8' };
  const [one] = await job(t, 1, env);
  const shim = fileURLToPath(new URL('../../../test/distributed/torchrun_shim.py', import.meta.url));
  const port = await freePort();
  const run = procs.spawn(shim, ['--nproc_per_node', '2', '--master_port', String(port), '--no_python', process.execPath, WORKER], { ...env, CK_OUT: join(dir, 'out.json') }, '/usr/bin/python3');
  const code = await within(60_000, run.done, 'torchrun');
  assert.equal(code, 0, run.stderr);
  const two = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Result;
  assert.ok(maxDiff(one.params, two.params) < 1e-5);
});

test('a killed worker makes the other stop with an error naming its rank', async (t) => {
  const procs = new Procs();
  t.after(() => procs.killAll());
  const port = await freePort();
  const env = { CK_LOOP: '1', CK_STEPS: '2', CK_BATCH: '4' };
  const r0 = procs.worker(0, 2, port, env);
  const r1 = procs.worker(1, 2, port, env);
  await within(30_000, Promise.all([r0.waitFor('training'), r1.waitFor('training')]), 'start');
  r1.child.kill('SIGKILL');
  const code = await within(15_000, r0.done, 'rank 0 after rank 1 died');
  assert.notEqual(code, 0);
  assert.match(r0.stderr, /rank 1 stopped/);
  assert.match(r0.stderr, /killed/);
});

test('a killed rank 0 makes the others stop, naming it as the store\'s host', async (t) => {
  const procs = new Procs();
  t.after(() => procs.killAll());
  const port = await freePort();
  const env = { CK_LOOP: '1', CK_STEPS: '2', CK_BATCH: '4' };
  const r0 = procs.worker(0, 2, port, env);
  const r1 = procs.worker(1, 2, port, env);
  await within(30_000, Promise.all([r0.waitFor('training'), r1.waitFor('training')]), 'start');
  r0.child.kill('SIGKILL');
  assert.notEqual(await within(15_000, r1.done, 'rank 1 after rank 0 died'), 0);
  assert.match(r1.stderr, /rank 1 of 2: rank 0 stopped \(its rendezvous store at 127\.0\.0\.1:\d+ is unreachable\)/);
});

test('a stuck worker makes the other fail after the collective timeout, saying every rank is alive', async (t) => {
  const procs = new Procs();
  t.after(() => procs.killAll());
  const port = await freePort();
  const env = { CK_STEPS: '3', CK_BATCH: '4', CK_HANG_AT: '1', CK_TIMEOUT_MS: '2000' };
  const r0 = procs.worker(0, 2, port, env);
  procs.worker(1, 2, port, env);
  const code = await within(30_000, r0.done, 'rank 0 facing a stuck rank 1');
  assert.notEqual(code, 0);
  assert.match(r0.stderr, /timed out after 2 s although every rank is alive/);
});

test('a rendezvous that never completes times out with how many joined', async (t) => {
  const procs = new Procs();
  t.after(() => procs.killAll());
  const port = await freePort();
  const r0 = procs.worker(0, 3, port, { CK_RDZV_MS: '1500' });
  const code = await within(20_000, r0.done, 'rank 0 alone');
  assert.notEqual(code, 0);
  assert.match(r0.stderr, new RegExp(`rendezvous at 127\\.0\\.0\\.1:${port} timed out after 1\\.5 s: only 1 of 3 processes joined`));
  // a worker whose rank 0 never comes
  const r2 = procs.worker(2, 3, await freePort(), { CK_RDZV_MS: '1500' });
  assert.notEqual(await within(20_000, r2.done, 'rank 2 alone'), 0);
  assert.match(r2.stderr, /rank 2 of 3: rendezvous at 127\.0\.0\.1:\d+ did not complete within 1\.5 s: rank 0 could not be reached/);
});

test('a port in use is reported as such', async (t) => {
  const procs = new Procs();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  t.after(async () => {
    await procs.killAll();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const r0 = procs.worker(0, 2, port, { CK_RDZV_MS: '3000' });
  assert.notEqual(await within(20_000, r0.done, 'rank 0 on a taken port'), 0);
  assert.match(r0.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
});
