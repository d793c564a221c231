// The benchmarks' results: docs/benchmarks.md written from their JSON (one current table per
// bench and machine kind, with date and command), result files checked field by field, and the
// runner end to end on a quick engine_step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseResult, renderBenchmarks, table, type BenchResult } from '../../bench/results.js';
import { readResults, writeReport } from '../../bench/report.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const AVX2 = { kind: 'Intel Xeon, avx2, 4 cores', cpu: 'Intel Xeon', isa: ['avx2'], cores: 4 };
const BF16 = { kind: 'AMD EPYC, avx512_bf16 avx512f avx2, 2 cores', cpu: 'AMD EPYC', isa: ['avx512_bf16', 'avx512f', 'avx2'], cores: 2 };

function result(bench: string, machine: typeof AVX2, date: string, ms: number): BenchResult {
  return {
    bench, date, command: `node dist-dev/bench/${bench}.js --steps 40`, machine, libtorch: '1.13.0', commit: 'abc1234',
    tables: [{ title: `${bench} at ${ms}`, headers: ['case', 'convkit (ms)', 'note'], rows: [['step', ms, 'a | b']] }],
  };
}

test('one current table per bench and machine kind, with date and command', () => {
  const md = renderBenchmarks([
    result('engine_step', AVX2, '2026-11-01T10:00:00.000Z', 12.5),
    result('engine_step', AVX2, '2026-12-01T10:00:00.000Z', 11.25), // newer: replaces the one above
    result('model_forward', AVX2, '2026-10-01T10:00:00.000Z', 250.4),
    result('engine_step', BF16, '2026-12-02T10:00:00.000Z', 9.1234),
  ]);
  assert.match(md, /^# Benchmarks\n/);
  // machine kinds sorted, each a section listed at the top with a working anchor
  const kinds = [...md.matchAll(/^## (.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(kinds, [BF16.kind, AVX2.kind]);
  assert.match(md, /^- \[AMD EPYC, avx512_bf16 avx512f avx2, 2 cores\]\(#amd-epyc-avx512_bf16-avx512f-avx2-2-cores\)$/m);
  const avx2 = md.slice(md.indexOf(`## ${AVX2.kind}`));
  assert.deepEqual([...avx2.matchAll(/^### (.*)$/gm)].map((m) => m[1]), ['engine_step', 'model_forward']);
  assert.doesNotMatch(md, /engine_step at 12\.5/, 'the older engine_step result of the same machine kind is gone');
  assert.match(avx2, /### engine_step\n\n2026-12-01, libtorch 1\.13\.0, convkit abc1234: `node dist-dev\/bench\/engine_step\.js --steps 40`\n\nengine_step at 11\.25:\n\n\| case \| convkit \(ms\) \| note \|\n\| --- \| --- \| --- \|\n\| step \| 11\.3 \| a \\\| b \|/);
  assert.match(md, /\| step \| 250 \|/, 'numbers as the benches print them');
  assert.match(md, /\| step \| 9\.123 \|/);
  assert.ok(md.endsWith('|\n'));
  assert.match(renderBenchmarks([]), /No results yet: run `npm run bench`\./);
});

test('a plot beside a result is shown under its tables', () => {
  const md = renderBenchmarks([{ ...result('scaling', BF16, '2026-12-02T10:00:00.000Z', 1), plot: 'scaling.svg' }]);
  assert.match(md, /\| step \| 1\.000 \| a \\\| b \|\n\n!\[scaling\]\(\.\.\/bench\/results\/amd-epyc-avx512-bf16-avx512f-avx2-2-cores\/scaling\.svg\)\n$/);
});

test('table(): markdown rows, numbers at three significant places at most', () => {
  assert.equal(table(['a', 'b'], [['x', 1234.5], ['y', 0.12345]]), '| a | b |\n| --- | --- |\n| x | 1235 |\n| y | 0.123 |');
});

test('a result file is checked field by field; errors name the file and the field', () => {
  const good = result('engine_step', AVX2, '2026-12-01T10:00:00.000Z', 1);
  assert.deepEqual(parseResult(JSON.stringify(good), 'a.json'), good);
  const cases: [unknown, RegExp][] = [
    ['{', /: x\.json: not JSON: /],
    [[], /: x\.json: expected a JSON object$/],
    [{ ...good, bench: '../x' }, /: x\.json: "bench" must be a benchmark name$/],
    [{ ...good, date: 'yesterday' }, /"date" must be an ISO date/],
    [{ ...good, machine: { cpu: 'x' } }, /"machine\.kind" must be a string/],
    [{ ...good, commit: 7 }, /"commit" must be a string/],
    [{ ...good, tables: [{ title: 't', headers: ['a'], rows: [[{}]] }] }, /"tables" must be a list of \{title, headers, rows\}/],
    [{ ...good, tables: [{ title: 't', headers: ['a'], rows: [[Number.NaN]] }] }, /"tables" must be/],
    [{ ...good, plot: '../../etc/x.svg' }, /"plot" must be the name of an \.svg file beside the result/],
  ];
  for (const [v, re] of cases) assert.throws(() => parseResult(typeof v === 'string' ? v : JSON.stringify(v), 'x.json'), re);
});

test('bench/run.js --quick runs a bench, keeps its JSON result, and the report reads it', () => {
  const run = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
  const out = path.join(tmp, 'results');
  const r = spawnSync(process.execPath, [run, 'engine_step', '--quick', '--threads', '1', '--out', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  // convkit, PyTorch on glibc's malloc and on tcmalloc, convkit against the faster of the two
  assert.match(r.stdout, /\| {2}\| convkit \| PyTorch 1\.13 \(Python\), glibc malloc \| PyTorch 1\.13 \(Python\) \+ tcmalloc \| convkit \/ best PyTorch \|/);
  assert.match(r.stdout, /\| training step \(ms\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
  assert.match(r.stdout, /convkit: own cache, glibc malloc\n/, "the title names convkit's set-up");
  const [res] = readResults(out);
  assert.equal(res.bench, 'engine_step');
  assert.match(res.command, /^node dist-dev\/bench\/engine_step\.js --steps 3 --batch 8 --threads 1$/, 'the command without --json');
  assert.deepEqual(res.tables[0].rows.map((row) => row[0]), ['training step (ms)', 'trivial call: numel (ns CPU)', 'small op: add of 1-element tensors (ns CPU)']);
  assert.ok(res.tables[0].rows.every((row) => row.length === 5 && row.slice(1).every((v) => typeof v === 'number' && v > 0)));
  for (const [, ck, glibc, tcmalloc, ratio] of res.tables[0].rows as number[][]) {
    assert.ok(Math.abs(ratio - ck / Math.min(glibc, tcmalloc)) < 1e-9, 'times: the ratio is against the lower of the two');
  }
  const doc = path.join(tmp, 'benchmarks.md');
  assert.equal(writeReport(out, doc), 1);
  const md = fs.readFileSync(doc, 'utf8');
  assert.ok(md.includes(`## ${res.machine.kind}\n\n### engine_step\n`), md);
  assert.equal(spawnSync(process.execPath, [run, 'nope'], { encoding: 'utf8' }).status, 2);
});
