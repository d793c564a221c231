// The benchmarks' options: a malformed number or a missing value stops the run at once with a
// one-line message naming the option and exit code 2; well-formed ones read back as given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const tmp = mkdtempSync(join(tmpdir(), 'convkit-args-test-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const PROBE = join(tmp, 'probe.mjs');
writeFileSync(PROBE, `import { arg, listArg, stringArg } from ${JSON.stringify(new URL('../../bench/args.js', import.meta.url).href)};
console.log(JSON.stringify([arg('steps', 40), arg('lr', 0), stringArg('runs') ?? null, listArg('models') ?? null]));
`);

function probe(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [PROBE, ...args], { encoding: 'utf8', timeout: 30_000 });
}

test('bench options read back as given, with their fallbacks when absent', () => {
  const r = probe('--lr', '-0.5', '--runs', 'runs/x', '--models', 'a,b');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [40, -0.5, 'runs/x', ['a', 'b']]);
});

test('a malformed number or a missing value stops the bench with a message naming the option', () => {
  for (const [args, message] of [
    [['--lr', 'abc'], "--lr must be a number, got 'abc'"],
    [['--steps', ''], "--steps must be a number, got ''"],
    [['--steps', 'Infinity'], "--steps must be a number, got 'Infinity'"],
    [['--runs'], '--runs needs a value'],
    [['--steps', '--lr', '1'], '--steps needs a value'],
  ] as const) {
    const r = probe(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim(), `error: ${message}`);
  }
});
