// The compound-scaling search: the grid under the budget, a tiny proxy search that is stopped
// between candidates and inside one, then resumed (finished candidates skipped, the interrupted
// one continued from its checkpoint), a folder with other settings refused, and the commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import '../../src/models/index.js';
import { scaleSearch, searchGrid, type ScaleSearchEvent, type ScaleSearchOptions } from '../../src/train/scale_search.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-scale-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, CONVKIT_NUM_THREADS: '1' }, cwd: tmp, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the grid: every coefficient >= 1 on the step, alpha beta^2 gamma^2 within the tolerance; the paper\'s point is on the 0.05 grid', () => {
  for (const [budget, step] of [[2, 0.1], [2, 0.05], [1.5, 0.25]] as const) {
    const g = searchGrid(budget, step, 0.05);
    assert.ok(g.length > 0);
    for (const c of g) {
      for (const v of [c.alpha, c.beta, c.gamma]) {
        assert.ok(v >= 1);
        assert.ok(Math.abs((v - 1) / step - Math.round((v - 1) / step)) < 1e-6, `${v} on the ${step} grid`);
      }
      assert.ok(Math.abs((c.alpha * c.beta ** 2 * c.gamma ** 2) / budget - 1) <= 0.05 + 1e-9);
    }
    assert.equal(new Set(g.map((c) => `${c.alpha},${c.beta},${c.gamma}`)).size, g.length, 'no duplicates');
  }
  assert.ok(searchGrid(2, 0.05).some((c) => c.alpha === 1.2 && c.beta === 1.1 && c.gamma === 1.15));
  assert.deepEqual(searchGrid(1, 0.1, 0), [{ alpha: 1, beta: 1, gamma: 1 }]);
  assert.throws(() => searchGrid(0.8), /the budget must be a number >= 1 .*got 0\.8/);
  assert.throws(() => searchGrid(2, 0), /the grid step must be in 0\.01\.\.1/);
});

const OPTS = (outDir: string): ScaleSearchOptions => ({
  base: { model: 'efficientnet_b0', widthMult: 0.25, depthMult: 0.34, resolution: 16 },
  dataset: 'synthetic', budget: 1.5, step: 0.25, proxyEpochs: 1, outDir,
  recipe: { limitTrain: 64, limitTest: 32, batchSize: 32, threads: 1, bf16: false, channelsLast: false, evalFlip: false, warmupEpochs: 0 },
});

test('a tiny proxy search, stopped between candidates and inside one, resumes where it stopped', async () => {
  const out = path.join(tmp, 'search');
  const events: ScaleSearchEvent[] = [];
  // first session: one candidate, then stop
  let finished = 0;
  const first = await scaleSearch({ ...OPTS(out), onEvent: (e) => { events.push(e); if (e.type === 'candidateEnd') finished++; }, shouldStop: () => finished >= 1 });
  assert.equal(first.complete, false);
  assert.equal(first.state.results.length, 1);
  const plan = events.find((e) => e.type === 'plan') as Extract<ScaleSearchEvent, { type: 'plan' }>;
  assert.equal(plan.candidates.length, 3);
  const firstKey = first.state.results[0].key;
  const firstModel = path.join(out, firstKey, 'model.safetensors');
  const mtime = fs.statSync(firstModel).mtimeMs;

  // second session: stopped inside the next candidate, after its first step
  const second = await scaleSearch({ ...OPTS(out), onTrainer: (t) => t.stop() });
  assert.equal(second.complete, false);
  assert.equal(second.state.results.length, 1);

  // third session: skips the finished one, resumes the interrupted one from its checkpoint, runs the last
  const third: ScaleSearchEvent[] = [];
  const done = await scaleSearch({ ...OPTS(out), onEvent: (e) => third.push(e) });
  assert.equal(done.complete, true);
  assert.equal(done.state.results.length, 3);
  const skips = third.filter((e) => e.type === 'skip') as Extract<ScaleSearchEvent, { type: 'skip' }>[];
  assert.deepEqual(skips.map((e) => e.candidate.key), [firstKey]);
  const starts = third.filter((e) => e.type === 'candidateStart') as Extract<ScaleSearchEvent, { type: 'candidateStart' }>[];
  assert.deepEqual(starts.map((e) => e.resumed), [true, false]);
  assert.equal(fs.statSync(firstModel).mtimeMs, mtime, 'the finished candidate was not trained again');
  for (const r of done.state.results) {
    assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && r.macs > 0 && r.params > 0 && r.seconds > 0);
    assert.ok(fs.existsSync(path.join(out, r.key, 'model.safetensors')));
  }
  // the ranking and the files
  assert.ok(done.ranked.every((r, i) => i === 0 || done.ranked[i - 1].accuracy >= r.accuracy));
  const json = JSON.parse(fs.readFileSync(done.files.json, 'utf8')) as { results: unknown[] };
  assert.equal(json.results.length, 3);
  assert.match(fs.readFileSync(done.files.table, 'utf8'), /^alpha {2}beta {3}gamma/);

  // a fourth run has nothing left to do; other settings in the same folder are refused
  const again: ScaleSearchEvent[] = [];
  await scaleSearch({ ...OPTS(out), onEvent: (e) => again.push(e) });
  assert.equal(again.filter((e) => e.type === 'candidateStart').length, 0);
  await assert.rejects(scaleSearch({ ...OPTS(out), budget: 2 }), /holds a search with other settings: budget 1\.5 \(now 2\)/);
});

test('convkit scale and scale-search: output, files, errors', () => {
  const s = cli(['scale', '--base', 'efficientnet_b0', '--alpha', '1.2', '--beta', '1.1', '--gamma', '1.15', '--phi', '1', '--json']);
  assert.equal(s.code, 0, s.stderr);
  const j = JSON.parse(s.stdout) as { resolution: number; macsRatio: number; expectedRatio: number; params: number; stages: unknown[] };
  assert.equal(j.resolution, 256); // 224 x 1.15 = 257.6 -> 256
  assert.ok(j.macsRatio > 0.9 * j.expectedRatio && j.macsRatio < 1.45 * j.expectedRatio);
  assert.equal(j.stages.length, 7);
  const out = path.join(tmp, 'scaled');
  const w = cli(['scale', '--phi', '1', '--base-width', '0.25', '--base-depth', '0.34', '--resolution', '32', '--num-classes', '10', '--in-channels', '1', '-o', out]);
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /resolution 32 -> 40/);
  const recipe = JSON.parse(fs.readFileSync(path.join(out, 'recipe.json'), 'utf8')) as { model: string; modelOptions: { widthMult: number }; imageSize: number[] };
  assert.equal(recipe.model, 'efficientnet_b0');
  assert.ok(Math.abs(recipe.modelOptions.widthMult - 0.275) < 1e-9);
  assert.deepEqual(recipe.imageSize, [40, 40]);
  // the recipe trains as written (planned only here)
  const dry = cli(['train', '--recipe', path.join(out, 'recipe.json'), '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  const inspect = cli(['inspect', path.join(out, 'model.safetensors'), '--json']);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.match(inspect.stdout, /convkit_scaling/);

  const bad: [string[], RegExp][] = [
    [['scale', '--phi', '1', '--alpha', '0.9'], /--alpha must be >= 1/],
    [['scale', '--phi', '1', '--gamma', '0.5'], /--gamma must be >= 1/],
    [['scale', '--alpha', '1.2'], /--phi is required/],
    [['scale', '--phi', '1', '--base', 'resnet50'], /cannot scale 'resnet50'/],
    [['scale-search', '--dataset', 'synthetic', '-o', tmp, '--budget', '0.5'], /--budget must be >= 1/],
    [['scale-search', '--dataset', 'imagenet', '-o', tmp], /unknown dataset 'imagenet'/],
    [['scale-search', '--dataset', 'synthetic'], /the search folder is required/],
    [['scale-search', '--dataset', 'synthetic', '-o', tmp, '--base', 'resnet18'], /cannot scale 'resnet18'/],
  ];
  for (const [args, re] of bad) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  for (const c of ['scale', 'scale-search']) assert.match(cli([c, '--help']).stdout, new RegExp(`^usage: convkit ${c} `));
});
