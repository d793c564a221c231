// The benchmarks' allocator set-ups: the preloaded libraries are found, the environment of each
// set-up preloads exactly its library, --convkit-alloc/--convkit-cache run convkit's side on the
// chosen one (checked in the child's own memory map), and the sides take turns round after round.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { allocatorLibrary, currentAllocator, preloadEnv } from '../../bench/alloc.js';
import { sideBySide, vsBest, type PyAllocator } from '../../bench/common.js';

const tmp = mkdtempSync(join(tmpdir(), 'convkit-alloc-test-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// a stand-in for a benchmark: loads bench/preload.js first, then reports the allocator and cache setting it ends up on
const PROBE = join(tmp, 'probe.mjs');
writeFileSync(PROBE, `import ${JSON.stringify(new URL('../../bench/preload.js', import.meta.url).href)};
import { currentAllocator } from ${JSON.stringify(new URL('../../bench/alloc.js', import.meta.url).href)};
console.log(\`\${currentAllocator()} \${process.env.CONVKIT_CACHING_ALLOCATOR ?? '-'}\`);
`);

test('the allocators are found, and each set-up preloads exactly its own library', () => {
  assert.equal(basename(allocatorLibrary('tcmalloc')), 'libtcmalloc_minimal.so.4');
  assert.equal(basename(allocatorLibrary('jemalloc')), 'libjemalloc.so.2');
  assert.ok(existsSync(allocatorLibrary('tcmalloc')));
  const env = { PATH: '/bin', LD_PRELOAD: '/x/libother.so' };
  assert.deepEqual(preloadEnv('glibc', env), { PATH: '/bin' }, 'glibc: nothing preloaded, not even an inherited preload');
  assert.deepEqual(preloadEnv('tcmalloc', env), { PATH: '/bin', LD_PRELOAD: allocatorLibrary('tcmalloc') });
  // jemalloc with the settings of PyTorch's launcher, replacing any inherited ones
  assert.deepEqual(preloadEnv('jemalloc', { ...env, MALLOC_CONF: 'junk:true' }),
    { PATH: '/bin', LD_PRELOAD: allocatorLibrary('jemalloc'), MALLOC_CONF: 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1' });
  assert.equal(currentAllocator(), 'glibc', 'the test runner starts on glibc');
});

function probe(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const { LD_PRELOAD: _, ...rest } = process.env;
  return spawnSync(process.execPath, [PROBE, ...args], { encoding: 'utf8', env: { ...rest, ...env }, timeout: 30_000 });
}

test('--convkit-alloc runs the benchmark again on the preloaded allocator; --convkit-cache sets the engine flag', () => {
  assert.equal(probe([]).stdout, 'glibc -\n');
  assert.equal(probe(['--convkit-alloc', 'tcmalloc']).stdout, 'tcmalloc -\n');
  assert.equal(probe(['--convkit-alloc', 'jemalloc', '--convkit-cache', 'off']).stdout, 'jemalloc 0\n');
  assert.equal(probe(['--convkit-cache', 'on']).stdout, 'glibc 1\n');
  // started on tcmalloc, asked for glibc: runs again without the preload
  assert.equal(probe(['--convkit-alloc', 'glibc'], { LD_PRELOAD: allocatorLibrary('tcmalloc') }).stdout, 'glibc -\n');
  const bad = probe(['--convkit-alloc', 'mimalloc']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, "error: --convkit-alloc: expected glibc, tcmalloc, jemalloc, got 'mimalloc'\n");
  assert.match(probe(['--convkit-cache', 'maybe']).stderr, /^error: --convkit-cache: expected on, off, got 'maybe'\n$/);
});

test('sideBySide: convkit, PyTorch on glibc, PyTorch on tcmalloc, and again each round', async () => {
  const order: string[] = [];
  const sides = await sideBySide(2, async () => { order.push('convkit'); return order.length; },
    (a: PyAllocator) => { order.push(a); return `${a}${order.length}`; });
  assert.deepEqual(order, ['convkit', 'glibc', 'tcmalloc', 'convkit', 'glibc', 'tcmalloc']);
  assert.deepEqual(sides, { convkit: [1, 4], pytorch: { glibc: ['glibc2', 'glibc5'], tcmalloc: ['tcmalloc3', 'tcmalloc6'] } });
});

test('vsBest: against the faster PyTorch set-up, the lower time or the higher rate', () => {
  assert.equal(vsBest(10, [20, 8], 'lower'), 1.25);
  assert.equal(vsBest(10, [8, 20], 'lower'), 1.25);
  assert.equal(vsBest(300, [200, 250], 'higher'), 1.2);
});
