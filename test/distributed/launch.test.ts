// The launcher: torchrun's variables for each worker, the first failure's code, and the other
// workers ended after the grace time (SIGTERM), none left running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchWorkers, type WorkerExit } from '../../src/distributed/launch.js';

function script(t: { after: (fn: () => void) => void }, body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-launch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.mjs');
  writeFileSync(file, body);
  return file;
}

test('each worker gets its rank, the world size and rank 0\'s address; all succeed: code 0', async (t) => {
  const file = script(t, `const e = process.env;
if (e.WORLD_SIZE !== '4' || e.LOCAL_WORLD_SIZE !== '2' || e.MASTER_ADDR !== 'h0' || e.MASTER_PORT !== '1234') process.exit(9);
if (Number(e.RANK) !== 2 + Number(e.LOCAL_RANK) || !e.CONVKIT_NUM_THREADS) process.exit(8);`);
  const r = await launchWorkers({ nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: 'h0', masterPort: 1234, script: file, args: [], env: { PATH: process.env.PATH } });
  assert.equal(r.code, 0, JSON.stringify(r.exits));
  assert.deepEqual(r.exits.map((e) => e.rank).sort(), [2, 3]);
});

test('a failed worker: its code, and the others ended after the grace time', async (t) => {
  const file = script(t, `if (process.env.RANK === '1') process.exit(3); setInterval(() => {}, 1000);`);
  const seen: WorkerExit[] = [];
  const t0 = Date.now();
  const r = await launchWorkers({ nprocPerNode: 3, script: file, args: [], graceMs: 300, onExit: (e) => seen.push(e) });
  assert.equal(r.code, 3);
  assert.equal(r.failed?.rank, 1);
  assert.deepEqual(seen.filter((e) => e.rank !== 1).map((e) => e.signal), ['SIGTERM', 'SIGTERM']);
  assert.ok(Date.now() - t0 < 10_000);
  for (const e of r.exits) assert.throws(() => process.kill(e.pid, 0));
});

test('bad launcher numbers are refused naming the flag', async () => {
  await assert.rejects(launchWorkers({ nprocPerNode: 0, script: 'x', args: [] }), /--nproc-per-node must be an integer in 1\.\.1024, got 0/);
  await assert.rejects(launchWorkers({ nprocPerNode: 1, nnodes: 2, nodeRank: 2, script: 'x', args: [] }), /--node-rank must be an integer in 0\.\.1, got 2/);
});
