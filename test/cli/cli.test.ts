// The convkit command end to end, as child processes: train (files, log, report), eval (JSON),
// inspect, summary, models, --help everywhere, exit codes for bad usage (2) and failures (1),
// and Ctrl-C mid-epoch (exit 130, a checkpoint that resumes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readCheckpointMeta, type TrainState } from '../../src/train/index.js';

// The command as compiled with the tests, so that models an --import'ed test module registers
// land in the registry it reads; bin/convkit.js (the package build in dist/) has its own test.
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/convkit.js', import.meta.url));
const TINY = fileURLToPath(new URL('../train/tiny_model.js', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const ENV = { ...process.env, CONVKIT_NUM_THREADS: '1', CONVKIT_CACHE_DIR: path.join(tmp, 'cache'), CONVKIT_DEBUG: '' };

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[], env: NodeJS.ProcessEnv = ENV): Run {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env, cwd: tmp, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TRAIN = ['--model', 'tiny_cnn', '--import', TINY, '--threads', '1', '--batch-size', '64', '--warmup-epochs', '0', '--bf16', 'off', '--channels-last', 'off'];

test('--help on every command, exit 0', () => {
  const main = cli(['--help']);
  assert.equal(main.code, 0);
  for (const c of ['train', 'eval', 'models', 'summary', 'inspect']) {
    assert.match(main.stdout, new RegExp(`^  ${c} `, 'm'));
    const r = cli([c, '--help']);
    assert.equal(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: convkit ${c}`));
  }
  assert.match(cli(['train', '-h']).stdout, /--resume/);
});

test('bin/convkit.js runs the package build: --version, --help', () => {
  const { version } = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env: ENV, cwd: tmp });
  assert.equal(v.status, 0, `${v.stderr} (is dist/ built? npm run build)`);
  assert.equal(v.stdout.trim(), version);
  const h = spawnSync(process.execPath, [BIN, 'models', '--help'], { encoding: 'utf8', env: ENV, cwd: tmp });
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /^usage: convkit models/);
});

test('bad usage exits 2 with a clear message; failures exit 1 without a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /unknown command 'frobnicate'; commands are train, eval, models, summary, inspect/],
    [['train', '--epochz', '3'], /convkit train: Unknown option '--epochz'/],
    [['train', '--epochs', 'three'], /--epochs must be an integer >= 1, got 'three'/],
    [['train', '--bf16', 'maybe'], /--bf16 must be on, off or auto, got 'maybe'/],
    [['train', '--set', 'lerning_rate=0.1'], /unknown key "lerning_rate".*valid keys are: model,/s],
    [['train', '--model', 'resnet9000', '--dry-run'], /unknown model 'resnet9000': known models are .*resnet20/],
    [['train', '--schedule', 'wavy', '--dry-run'], /"schedule" must be one of cosine, onecycle/],
    [['train', 'extra'], /unexpected argument: extra/],
    [['train', '--nproc-per-node', '2', '--ddp-comm-hook', 'bf16'], /--ddp-comm-hook must be allreduce or fp16, got 'bf16'/],
    [['train', '--ddp-comm-hook', 'fp16'], /--ddp-comm-hook applies to data-parallel training: add --nproc-per-node/],
    [['eval', 'only-one-arg'], /expected 2 arguments, got 1/],
    [['summary', 'resnet20', '--input', '3,x,32'], /--input must be C,H,W or H,W of positive integers/],
    [['inspect', path.join(tmp, 'nope.safetensors')], /no such file/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const yaml = path.join(tmp, 'bad.yaml');
  fs.writeFileSync(yaml, 'model: tiny_cnn\nlearning_rate: 0.1\n');
  const bad = cli(['train', '--recipe', yaml, '--dry-run']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.yaml: unknown key "learning_rate"/);

  const fail = cli(['eval', path.join(tmp, 'missing.safetensors'), 'fashion-mnist']);
  assert.equal(fail.code, 1);
  assert.match(fail.stderr, /^convkit eval: error: checkpoint .*missing\.safetensors: no such file/);
  assert.doesNotMatch(fail.stderr, /\n\s+at /, 'no stack trace by default');
  const debug = cli(['eval', path.join(tmp, 'missing.safetensors'), 'fashion-mnist'], { ...ENV, CONVKIT_DEBUG: '1' });
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, /\n\s+at /, 'CONVKIT_DEBUG=1 shows the stack');
});

test('train with no recipe options plans the default recipe', () => {
  const r = cli(['train', '--dry-run']);
  assert.equal(r.code, 0, r.stderr);
  const recipe = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(recipe.model, 'airbench_m');
  assert.equal(recipe.dataset, 'fashion-mnist');
  assert.equal(recipe.numClasses, 10);
  assert.equal(recipe.inChannels, 1);
  assert.ok(typeof recipe.bf16 === 'boolean' || recipe.bf16 === 'auto', "'auto' is decided, or left to run()'s timing");
  assert.match(String(recipe.outDir), /^runs\/airbench_m-fashion-mnist-\d{8}-\d{6}$/);
});

test('train end to end, then eval, inspect, summary and models on its outputs', () => {
  const out = path.join(tmp, 'run');
  // bf16 and channels-last, so that eval must repeat the run's precision to repeat its figure
  const r = cli(['train', ...TRAIN, '--bf16', 'on', '--channels-last', 'on', '--epochs', '1', '--limit-train', '1000', '--limit-test', '300', '--out-dir', out, '--ema', '0.9']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^ *\d+% epoch 1\/1 \d+\/16 /m, 'progress lines every ~10% when stderr is not a terminal');
  assert.match(r.stderr, /epoch 1: train loss [\d.]+ acc [\d.]+% \| test loss [\d.]+ top-1 [\d.]+% top-5 [\d.]+% \| EMA top-1/);
  assert.match(r.stderr, /best top-1/);
  assert.match(r.stderr, /final test top-1 [\d.]+%.*\(test-time augmentation: convkit eval --flip\)/, 'the summary says how to repeat its figure');
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(log.length, 1);
  for (const k of ['epoch', 'trainLoss', 'trainAcc', 'valLoss', 'valAcc', 'valTop5', 'emaAcc', 'lr', 'imagesPerSec', 'epochSeconds', 'rssMB']) {
    assert.equal(typeof log[0][k], 'number', `log.jsonl ${k}`);
  }
  for (const f of ['recipe.json', 'last.safetensors', 'best.safetensors', 'model.safetensors', 'report.html']) assert.ok(fs.existsSync(path.join(out, f)), f);

  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  for (const id of ['chart-loss', 'chart-accuracy', 'chart-learning-rate', 'confusion-matrix', 'class-report', 'misclassified']) {
    assert.match(html, new RegExp(`id="${id}`), `report.html lacks ${id}`);
  }
  assert.match(html, /<path d="M[\d.]+,[\d.]+/, 'curves are drawn');
  assert.ok((html.match(/src="data:image\/png;base64,/g) ?? []).length >= 5, 'misclassified images as PNG data URIs');
  assert.match(html, /true: [A-Za-z/-]+<br>pred: /);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained: no scripts, no external resources');

  const ev = cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--import', TINY, '--limit', '300', '--json']);
  assert.equal(ev.code, 0, ev.stderr);
  const j = JSON.parse(ev.stdout) as { top1: number; top5: number; loss: number; count: number; perClass: unknown[]; confusion: number[][]; model: string };
  assert.equal(j.model, 'tiny_cnn');
  assert.equal(j.count, 300);
  assert.ok(j.top1 > 0.1 && j.top5 >= j.top1 && j.loss > 0);
  assert.equal(j.perClass.length, 10);
  assert.equal(j.confusion.flat().reduce((a, b) => a + b, 0), 300);
  // with the final evaluation's test-time augmentation, eval repeats the run's final figure
  // (--limit picks the images that train's --limit-test picked with seed 0)
  const full = cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--import', TINY, '--limit', '300', '--json', '--flip']);
  assert.equal(full.code, 0, full.stderr);
  const jf = JSON.parse(full.stdout) as { top1: number; loss: number; tta: unknown; count: number };
  assert.deepEqual(jf.tta, { flip: true, translate: 0 });
  const finalAcc = log[0].valAcc as number;
  assert.equal(jf.count, 300);
  assert.ok(Math.abs(jf.top1 - finalAcc) < 1e-9, `eval --flip ${jf.top1} against the run's final ${finalAcc}`);
  assert.ok(Math.abs(jf.loss - (log[0].valLoss as number)) < 1e-9, `eval --flip loss ${jf.loss} against the run's final ${String(log[0].valLoss)}`);
  const plain = cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--import', TINY, '--limit', '300', '--json', '--flip', '--bf16', 'off']);
  assert.notEqual((JSON.parse(plain.stdout) as { loss: number }).loss, jf.loss, '--bf16 off overrides the run\'s precision');
  const shifted = cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--import', TINY, '--limit', '100', '--json', '--flip', '--translate', '1']);
  assert.equal(shifted.code, 0, shifted.stderr);
  assert.deepEqual((JSON.parse(shifted.stdout) as { tta: unknown }).tta, { flip: true, translate: 1 });
  assert.match(cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--translate', 'x']).stderr, /--translate must be an integer in 0\.\.8192, got 'x'/);
  // the training checkpoint evaluates the same way (here its EMA weights), and as a table
  const emaEv = cli(['eval', path.join(out, 'last.safetensors'), 'fashion-mnist', '--import', TINY, '--limit', '300', '--ema']);
  assert.equal(emaEv.code, 0, emaEv.stderr);
  assert.match(emaEv.stdout, /EMA weights\) on fashion-mnist test: 300 images\ntop-1 [\d.]+% {3}top-5/);
  assert.match(emaEv.stdout, /precision\s+recall\s+f1\s+support/);
  assert.match(emaEv.stdout, /confusion matrix/);
  // weights of another architecture: exit 1, the keys listed
  const wrong = cli(['eval', path.join(out, 'model.safetensors'), 'fashion-mnist', '--model', 'resnet20', '--limit', '10']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /does not fit model CifarResNet: missing keys/);

  const ins = cli(['inspect', path.join(out, 'last.safetensors'), '--json']);
  assert.equal(ins.code, 0, ins.stderr);
  const info = JSON.parse(ins.stdout) as { metadata: Record<string, string>; tensors: { name: string; dtype: string; shape: number[] }[] };
  const names = info.tensors.map((t) => t.name);
  assert.ok(names.includes('model.fc.weight') && names.includes('ema.fc.weight') && names.includes('rng.torch'));
  assert.ok(names.some((n) => n.startsWith('optim.state.')));
  assert.deepEqual(info.tensors.find((t) => t.name === 'model.fc.weight')!.shape, [10, 32]);
  assert.equal(info.metadata.format, 'convkit-checkpoint');
  const state = JSON.parse(info.metadata.convkit) as TrainState;
  assert.equal(state.epoch, 1);
  assert.equal(state.recipe.model, 'tiny_cnn');
  const table = cli(['inspect', path.join(out, 'model.safetensors')]);
  assert.match(table.stdout, /conv1\.weight\s+F32\s+\[16, 1, 3, 3\]\s+144/);

  const sum = cli(['summary', 'tiny_cnn', '--import', TINY, '--input', '1,28,28']);
  assert.equal(sum.code, 0, sum.stderr);
  assert.match(sum.stdout, /conv1\s+Conv2d\s+\[1, 16, 28, 28\]\s+144\s+112,896/);
  assert.match(sum.stdout, /total parameters: +[\d,]+/);
  const models = cli(['models', '--filter', 'resnet20', '--json']);
  assert.equal(models.code, 0, models.stderr);
  const rows = JSON.parse(models.stdout) as { name: string; params: number; macs: number; inputSize: number[] }[];
  assert.deepEqual(rows.map((x) => [x.name, x.params, x.inputSize]), [['resnet20', 269722, [3, 32, 32]]]);
  assert.ok(rows[0].macs > 40e6 && rows[0].macs < 42e6, `resnet20 MACs ${rows[0].macs}`);
  const cached = cli(['models', '--filter', 'resnet20']);
  assert.match(cached.stdout, /resnet20\s+resnet\s+269\.72K\s+4[01]\.\d+M\s+3x32x32/);
});

test('Ctrl-C mid-epoch saves a checkpoint, exits 130, and --resume finishes the run', async () => {
  const out = path.join(tmp, 'sigint');
  const child = spawn(process.execPath, [MAIN, 'train', ...TRAIN, '--epochs', '1', '--limit-train', '6400', '--limit-test', '200', '--out-dir', out],
    { cwd: tmp, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr += s;
    if (!sent && /\d+% epoch 1\/1/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.ok(sent, `no progress seen: ${stderr}`);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /interrupted at epoch 1, batch \d+: saved .*last\.safetensors\nresume with: convkit train --resume/);
  const meta = readCheckpointMeta<TrainState>(path.join(out, 'last.safetensors'));
  assert.equal(meta.epoch, 0);
  assert.ok(meta.batch > 0 && meta.batch < 100, `stopped at batch ${meta.batch}`);
  assert.ok(meta.partial && meta.partial.seen === meta.batch * 64);
  assert.ok(!fs.existsSync(path.join(out, 'log.jsonl')) || fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8') === '');

  const conflict = cli(['train', '--resume', out, '--epochs', '3']);
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /--resume continues a run with its own recipe; drop 'epochs'/);
  const resumed = cli(['train', '--resume', out, '--import', TINY]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming tiny_cnn .* from epoch 1 batch ${meta.batch}`));
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n');
  assert.equal(log.length, 1);
  const done = readCheckpointMeta<TrainState>(path.join(out, 'last.safetensors'));
  assert.deepEqual([done.epoch, done.batch, done.step, done.finished], [1, 0, 100, true]);
});
