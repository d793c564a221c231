// The Trainer and `convkit train` over several processes: a run interrupted on 2 processes,
// resumed on 1, interrupted again and finished on 2 ends with the weights of one uninterrupted
// process (SyncBatchNorm); without SyncBatchNorm it does not (each process's BatchNorm sees half
// the batch). The CLI's launcher starts the workers, rank 0 alone writes, and a killed worker ends
// the run with an error naming it, no process left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Procs, freePort, within } from './helpers.js';
import { readSafetensors } from '../../src/io/index.js';

const TRAIN_WORKER = fileURLToPath(new URL('./train_worker.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function maxDiff(a: string, b: string): number {
  const x = readSafetensors(a);
  const y = readSafetensors(b);
  let d = 0;
  for (const [k, t] of x) {
    if (k.endsWith('num_batches_tracked')) continue;
    d = Math.max(d, t.sub(y.get(k)!).abs().max().item() as number);
  }
  return d;
}

test('interrupted on 2 processes, resumed on 1, finished on 2: the weights of 1 uninterrupted process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-dtrain-'));
  const procs = new Procs();
  t.after(async () => {
    await procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = { CK_MODEL: 'airbench_s' };
  const run = async (world: number, env: Record<string, string>): Promise<string[]> => {
    const port = await freePort();
    const ps = world === 1
      ? [procs.spawn(TRAIN_WORKER, [], { ...base, ...env, WORLD_SIZE: '1' })]
      : Array.from({ length: world }, (_, r) => procs.spawn(TRAIN_WORKER, [], {
        ...base, ...env, RANK: String(r), WORLD_SIZE: String(world), LOCAL_RANK: String(r), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      }));
    const codes = await within(90_000, Promise.all(ps.map((p) => p.done)), 'trainers');
    codes.forEach((c, r) => assert.equal(c, 0, `rank ${r}: ${ps[r].stderr}`));
    return ps.map((p) => p.stdout.trim());
  };
  const one = join(dir, 'one');
  const two = join(dir, 'two');
  const plain = join(dir, 'plain');
  await run(1, { CK_DIR: one, CK_SYNC_BN: '1' });
  // only rank 1 asks to stop: both stop there, as they agree on it each step
  const a = await run(2, { CK_DIR: two, CK_SYNC_BN: '1', CK_STOP: '0,3', CK_STOP_RANK: '1' });
  assert.deepEqual(a.map((s) => JSON.parse(s)), [{ interrupted: true, epochs: 0, step: 3 }, { interrupted: true, epochs: 0, step: 3 }]);
  await run(1, { CK_DIR: two, CK_RESUME: '1', CK_STOP: '1,2' });
  const b = await run(2, { CK_DIR: two, CK_RESUME: '1' });
  assert.equal(JSON.parse(b[1]).step, 10);
  const d = maxDiff(join(one, 'model.safetensors'), join(two, 'model.safetensors'));
  assert.ok(d < 1e-5, `max |w1 - w2| = ${d}`);
  await run(2, { CK_DIR: plain });
  assert.ok(maxDiff(join(one, 'model.safetensors'), join(plain, 'model.safetensors')) > 1e-4, 'per-process BatchNorm differs from the global one');
});

test('convkit train --nproc-per-node 2 --ddp-comm-hook fp16: rank 0 writes the run and prints global figures', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-dcli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'run');
  const r = spawnSync(process.execPath, [CLI, 'train', '--nproc-per-node', '2', '--dataset', 'synthetic', '--limit-train', '40', '--limit-test', '10',
    '--model', 'airbench_s', '--image-size', '28,28', '--epochs', '1', '--batch-size', '10', '--bf16', 'off', '--quiet', '--sync-bn', '--ddp-comm-hook', 'fp16', '--out-dir', out],
  { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /global batch 10 \(5 on each of 2 processes\)/);
  assert.equal(r.stderr.match(/^epoch 1:/gm)?.length, 1, 'one progress report, from rank 0');
  assert.deepEqual(readdirSync(out).sort(), ['best.safetensors', 'last.safetensors', 'log.jsonl', 'model.safetensors', 'recipe.json', 'report.html']);
  assert.ok(!existsSync(join(out, 'recipe.json.tmp')));
});

test('convkit train --nproc-per-node 2: a killed worker ends the run, naming the rank, no worker left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-dkill-'));
  const procs = new Procs();
  t.after(async () => {
    await procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const launcher = procs.spawn(CLI, ['train', '--nproc-per-node', '2', '--dataset', 'synthetic', '--limit-train', '400', '--limit-test', '10', '--model', 'airbench_s',
    '--image-size', '28,28', '--epochs', '50', '--batch-size', '4', '--bf16', 'off', '--out-dir', join(dir, 'run'), '--quiet'], {});
  await within(60_000, new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (launcher.stderr.includes('output:')) {
        clearInterval(poll);
        resolve();
      }
    }, 100);
  }), 'start');
  const pids = execFileSync('pgrep', ['-P', String(launcher.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  assert.equal(pids.length, 2);
  const rank1 = pids.find((pid) => execFileSync('cat', [`/proc/${pid}/environ`], { encoding: 'latin1' }).split('\0').includes('RANK=1'))!;
  process.kill(rank1, 'SIGKILL');
  // past the launcher's 30 s grace: a rank 0 that never reports shows as the launcher ending it
  const code = await within(45_000, launcher.done, () => `the launcher after rank 1 was killed (its stderr: ${launcher.stderr.slice(-1500)})`);
  assert.equal(code, 137);
  assert.match(launcher.stderr, /worker rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL/);
  assert.match(launcher.stderr, /rank 0 of 2: rank 1 stopped/);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'no worker left');
});

test('convkit train --nproc-per-node 2: workers exit when the launcher is killed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-dorphan-'));
  const procs = new Procs();
  t.after(async () => {
    await procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const launcher = procs.spawn(CLI, ['train', '--nproc-per-node', '2', '--dataset', 'synthetic', '--limit-train', '400', '--limit-test', '10', '--model', 'airbench_s',
    '--image-size', '28,28', '--epochs', '50', '--batch-size', '4', '--bf16', 'off', '--out-dir', join(dir, 'run'), '--quiet'], {});
  await within(60_000, new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (launcher.stderr.includes('output:')) {
        clearInterval(poll);
        resolve();
      }
    }, 100);
  }), 'start');
  const pids = execFileSync('pgrep', ['-P', String(launcher.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  launcher.child.kill('SIGKILL');
  await launcher.done;
  const gone = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  await within(15_000, new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (pids.every(gone)) {
        clearInterval(poll);
        resolve();
      }
    }, 200);
  }), 'the orphaned workers');
});
