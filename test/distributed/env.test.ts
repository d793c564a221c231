// torchrun's environment read and checked: each variable named in its error, the defaults of
// LOCAL_RANK and MASTER_PORT, and the CLI's refusal of launcher flags without --nproc-per-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inDistributedJob, workerEnv } from '../../src/distributed/env.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('workerEnv reads torchrun\'s variables', () => {
  assert.deepEqual(workerEnv({ RANK: '3', WORLD_SIZE: '4', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '1234' }),
    { rank: 3, worldSize: 4, localRank: 1, masterAddr: 'node0', masterPort: 1234 });
  assert.deepEqual(workerEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '10.0.0.1' }), { rank: 0, worldSize: 2, localRank: 0, masterAddr: '10.0.0.1', masterPort: 29500 });
  assert.equal(inDistributedJob({ WORLD_SIZE: '2' }), true);
  assert.equal(inDistributedJob({ WORLD_SIZE: '1' }), false);
  assert.equal(inDistributedJob({}), false);
});

test('workerEnv names the variable that is missing or wrong', () => {
  assert.throws(() => workerEnv({ WORLD_SIZE: '2', MASTER_ADDR: 'a' }), /RANK is not set/);
  assert.throws(() => workerEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a' }), /RANK must be an integer in 0\.\.1, got '2'/);
  assert.throws(() => workerEnv({ RANK: '0', WORLD_SIZE: 'two', MASTER_ADDR: 'a' }), /WORLD_SIZE must be an integer/);
  assert.throws(() => workerEnv({ RANK: '0', WORLD_SIZE: '2' }), /MASTER_ADDR is not set/);
  assert.throws(() => workerEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '70000' }), /MASTER_PORT must be an integer in 1\.\.65535/);
});

test('convkit train: launcher flags need --nproc-per-node; --help lists them', () => {
  const r = spawnSync(process.execPath, [CLI, 'train', '--master-port', '1234'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--master-port needs --nproc-per-node/);
  const h = spawnSync(process.execPath, [CLI, 'train', '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(h.stdout, /--nproc-per-node <n>/);
  assert.match(h.stdout, /--sync-bn/);
});
