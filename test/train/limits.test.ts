// Numbers that reach libtorch or an allocation from outside are range-checked, with errors that
// name the argument, the allowed range and the value: thread counts (argument, environment,
// recipe), batch and image sizes, class counts; and recipe files nested without end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_THREADS, getNumThreads, setNumThreads } from '../../src/engine/index.js';
import { loadRecipeFile, resolveRecipe, RecipeError } from '../../src/train/recipe.js';

test('setNumThreads takes 1..1024 and nothing else', () => {
  assert.equal(MAX_THREADS, 1024);
  const before = getNumThreads();
  for (const n of [0, -1, 1025, 1e9, 2.5, NaN]) {
    assert.throws(() => setNumThreads(n), new RegExp(`setNumThreads: expected an integer in 1\\.\\.1024, got ${n}`));
  }
  assert.equal(getNumThreads(), before);
});

test('thread counts from the environment are checked when convkit loads', () => {
  const engine = new URL('../../src/engine/index.js', import.meta.url).href;
  const run = (env: Record<string, string>): { status: number | null; stderr: string; stdout: string } => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const e = await import(${JSON.stringify(engine)}); console.log(e.getNumThreads());`], {
      env: { ...process.env, CONVKIT_NUM_THREADS: '', OMP_NUM_THREADS: '', ...env }, encoding: 'utf8', timeout: 60_000,
    });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  };
  const huge = run({ CONVKIT_NUM_THREADS: '100000' });
  assert.notEqual(huge.status, 0);
  assert.match(huge.stderr, /CONVKIT_NUM_THREADS must be an integer in 1\.\.1024, got '100000'/);
  assert.match(run({ OMP_NUM_THREADS: '5000' }).stderr, /OMP_NUM_THREADS must be an integer in 1\.\.1024, got '5000'/);
  assert.match(run({ CONVKIT_NUM_THREADS: 'many' }).stderr, /CONVKIT_NUM_THREADS must be an integer in 1\.\.1024, got 'many'/);
  // OpenMP's own list syntax is left to OpenMP
  const list = run({ OMP_NUM_THREADS: '2,1' });
  assert.equal(list.status, 0, list.stderr);
  assert.equal(run({ CONVKIT_NUM_THREADS: '1' }).stdout.trim(), '1');
});

test('recipes bound the sizes that reach allocations and libtorch', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ threads: 5000 }, /"threads" must be an integer in 1\.\.1024 or null, got 5000/],
    [{ batchSize: 1e7 }, /"batchSize" must be an integer in 1\.\.65536, got 10000000/],
    [{ evalBatchSize: 0 }, /"evalBatchSize" must be an integer in 1\.\.65536, got 0/],
    [{ imageSize: [224, 1e6] }, /"imageSize" must be a pair \[height, width\] of integers in 1\.\.8192 or null, got \[224,1000000\]/],
    [{ numClasses: 1e12 }, /"numClasses" must be an integer in 1\.\.100000 or null, got 1000000000000/],
    [{ prefetch: 1000 }, /"prefetch" must be an integer in 0\.\.64, got 1000/],
  ];
  for (const [layer, pattern] of cases) assert.throws(() => resolveRecipe(layer), (e) => e instanceof RecipeError && pattern.test(e.message));
  assert.equal(resolveRecipe({ threads: 1024, batchSize: 65536 }).threads, 1024);
});

test('recipe files: special files, deep nesting and long values give bounded errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-limits-'));
  try {
    assert.throws(() => loadRecipeFile(dir), /recipe file .*: expected a regular file \(recipe\), found a directory/);
    const deep = path.join(dir, 'deep.json');
    fs.writeFileSync(deep, `{"modelOptions": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    assert.throws(() => loadRecipeFile(deep), /deep\.json: not valid JSON: JSON nested deeper than the limit of 16 levels/);
    const long = path.join(dir, 'long.json');
    fs.writeFileSync(long, JSON.stringify({ epochs: 'x'.repeat(100_000) }));
    assert.throws(() => loadRecipeFile(long), (e) => e instanceof RecipeError && e.message.length < 300 && /"epochs" must be an integer in 1\.\.1000000, got "xxx/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
