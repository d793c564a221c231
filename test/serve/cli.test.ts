// `convkit serve` as a child process: usage errors exit 2, and SIGTERM is a graceful stop: the
// requests in flight are answered, new connections are refused, the process exits 0. Plus a
// checkpoint served (exported in memory) against the predictor on the same file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { manualSeed, tensor } from '../../src/engine/index.js';
import { createModel } from '../../src/models/index.js';
import { saveModelWeights } from '../../src/train/checkpoint.js';
import { loadPredictor } from '../../src/deploy/index.js';
import { startServer } from '../../src/serve/index.js';
import { SLOW_SIDE, dir, inferBody, request, slowModel, tinyModel, wave, type Reply } from './helpers.js';

after(() => fs.rmSync(dir, { recursive: true, force: true }));

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tiny = tinyModel();
const slow = slowModel();

const cli = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [MAIN, 'serve', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

test('--help, and bad arguments exit 2 with the reason', () => {
  const help = cli(['--help']);
  assert.equal(help.status, 0);
  assert.match(String(help.stdout), /usage: convkit serve <model>/);
  assert.match(String(help.stdout), /POST \/v2\/models\/<name>\/infer/);
  const bad: [string[], RegExp][] = [
    [[], /expected 1 or more argument, got 0/],
    [[tiny, '--max-batch', '0'], /--max-batch must be an integer in 1\.\.4096, got '0'/],
    [[tiny, '--port', 'http'], /--port must be an integer in 0\.\.65535/],
    [[tiny, '--host', '0.0.0.0'], /--host 0\.0\.0\.0 is not a loopback address: .*give --api-key/],
    [[tiny, '--api-key', 'short'], /--api-key must have at least 8 characters/],
    [[path.join(dir, 'missing.onnx')], /missing\.onnx: no such file or folder \(a registered model name needs --pretrained\)/],
    [[tiny, '--frobnicate'], /Unknown option '--frobnicate'/],
  ];
  for (const [args, message] of bad) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${String(r.stderr)}`);
    assert.match(String(r.stderr), message, args.join(' '));
  }
  // a model that does not load is a failure (1), not a usage error
  const junk = path.join(dir, 'junk.onnx');
  fs.writeFileSync(junk, 'not a model');
  const r = cli([junk, '--port', '0']);
  assert.equal(r.status, 1);
  assert.match(String(r.stderr), /junk\.onnx is not an ONNX model/);
});

test('SIGTERM: requests in flight are answered, then the process exits 0', async () => {
  const child = spawn(process.execPath, [MAIN, 'serve', `slow=${slow}`, tiny, '--port', '0', '--max-batch', '4', '--max-delay-ms', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const t0 = Date.now();
      const look = (): void => {
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
        if (m) resolve(Number(m[1]));
        else if (Date.now() - t0 > 30_000 || child.exitCode !== null) reject(new Error(`not listening: ${out}`));
        else setTimeout(look, 20);
      };
      look();
    });
    assert.match(out, /slow <- .*slow\.onnx \(input 3x128x128, 2 classes\)/);
    assert.match(out, /tiny <- .*tiny\.onnx \(input 3x8x8, 3 classes\)/);
    const body = inferBody(wave(4 * 3 * SLOW_SIDE * SLOW_SIDE, 0), [4, 3, SLOW_SIDE, SLOW_SIDE]);
    // one batch runs, two wait behind it
    const inFlight = [0, 1, 2].map(() => request(port, '/v2/models/slow/infer', { body }));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGTERM');
    const replies: Reply[] = await Promise.all(inFlight);
    for (const r of replies) assert.equal(r.status, 200, r.body.toString());
    assert.equal(await exited, 0, out);
    assert.match(out, /SIGTERM: finishing the requests in progress/);
    assert.match(out, /convkit serve: stopped/);
    await assert.rejects(request(port, '/v2/health/live'), /ECONNREFUSED/);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a checkpoint is served through its in-memory export, as the predictor runs it', async () => {
  manualSeed(11);
  const model = createModel('resnet20', { numClasses: 3, inChannels: 1 });
  const run = path.join(dir, 'run-a');
  fs.mkdirSync(run);
  const file = path.join(run, 'model.safetensors');
  saveModelWeights(file, model as never, {
    convkit_model: 'resnet20', convkit_model_options: JSON.stringify({ numClasses: 3, inChannels: 1 }), convkit_dataset: 'fashion-mnist',
    convkit_classes: JSON.stringify(['a', 'b', 'c']),
  });
  model.dispose();
  const s = await startServer({ models: [{ source: file }], port: 0, processMetrics: false });
  try {
    assert.deepEqual(s.models.map((m) => [m.name, m.signature.sampleShape, m.signature.classNames]), [['run-a', [1, 28, 28], ['a', 'b', 'c']]]);
    assert.equal(s.pageModel, null); // the page serves .onnx files only
    const x = wave(2 * 28 * 28, 3);
    const r = await request(s.port, '/v2/models/run-a/infer', { body: inferBody(x, [2, 1, 28, 28]) });
    assert.equal(r.status, 200, r.body.toString());
    const got = r.json<{ outputs: { data: number[] }[] }>().outputs[0].data;
    const p = await loadPredictor(file, { engine: 'onnxruntime' });
    const t = tensor(x, { shape: [2, 1, 28, 28] });
    try {
      const want = Array.from((await p.logits(t)).data);
      assert.ok(got.every((v, i) => Math.abs(v - want[i]) < 1e-4), `${got} vs ${want}`);
    } finally {
      t.dispose();
      await p.dispose();
    }
  } finally {
    await s.close();
  }
});
