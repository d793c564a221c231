// libtorch's warnings stay off the terminal: c10 warnings are collected (torchWarnings) rather
// than logged through glog, whose first message also prints "Logging before
// InitGoogleLogging()". Each run is a child process, so that its stderr can be read whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const engine = new URL('../../src/engine/index.js', import.meta.url).href;

// Two ops that make libtorch 1.13 warn: reading .grad of a non-leaf tensor, and a 'same'
// convolution with an even kernel.
const script = `
import { F, randn, tidy, torchWarnings } from '${engine}';
tidy(() => {
  const y = randn([2, 3], { requiresGrad: true }).mul(2);
  if (y.grad !== null) throw new Error('a non-leaf has no grad');
  F.conv2d(randn([1, 1, 8, 8]), randn([1, 1, 4, 4]), null, { padding: 'same' });
});
console.log(JSON.stringify(torchWarnings()));
`;

function run(env: Record<string, string> = {}): { stdout: string; stderr: string } {
  const base = { ...process.env };
  delete base.CONVKIT_TORCH_WARNINGS;
  delete base.GLOG_minloglevel;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...base, ...env },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `the child failed: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

test("libtorch's warnings are collected, not printed", () => {
  const { stdout, stderr } = run();
  assert.doesNotMatch(stderr, /InitGoogleLogging/);
  assert.doesNotMatch(stderr, /^[IWEF]\d{8} /m, 'no glog line');
  assert.doesNotMatch(stderr, /Warning/i);
  const warnings = JSON.parse(stdout) as string[];
  assert.ok(warnings.some((w) => w.includes('.grad attribute of a Tensor that is not a leaf')), stdout);
  assert.ok(warnings.some((w) => w.includes("padding='same'")), stdout);
});

test('CONVKIT_TORCH_WARNINGS=1 prints each warning once', () => {
  const { stderr } = run({ CONVKIT_TORCH_WARNINGS: '1' });
  const lines = stderr.split('\n').filter((l) => l.startsWith('convkit: libtorch warning: '));
  assert.equal(lines.length, 2, stderr);
  assert.doesNotMatch(stderr, /InitGoogleLogging/);
});
