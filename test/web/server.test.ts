// convkit web's server: the known files with their types and the isolation headers, the model and
// its metadata as JSON, and nothing else: traversal paths, unknown files, other methods and
// foreign Host headers are refused; non-loopback hosts need an explicit flag; the CLI prints the
// URL and stops cleanly on SIGINT and SIGTERM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { manualSeed, randn } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, Conv2d, Flatten, Linear, Sequential, type Module } from '../../src/nn/index.js';
import { exportOnnx } from '../../src/export/index.js';
import { predictorInfo } from '../../src/deploy/predictor.js';
import { isLoopback, ORT_FILES, startWebServer, type WebModelJson } from '../../src/web/index.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-web-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

manualSeed(3);
type AnyModule = Module<never[], unknown>;
const model = new Sequential(new Conv2d(3, 4, 3), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3)).eval() as unknown as AnyModule;
const file = path.join(dir, 'tiny.onnx');
exportOnnx(model, randn([1, 3, 8, 8]), { file, metadata: { modelName: 'tiny', classNames: ['x', 'y', 'z'], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resize: 8, crop: [8, 8] } });

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** A request with the path exactly as given (fetch would normalise ../ away before sending). */
function request(port: number, rawPath: string, o: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: o.method ?? 'GET', headers: o.host ? { Host: o.host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves the page, onnxruntime-web, the model and its metadata, with types and isolation headers', async () => {
  const server = await startWebServer({ model: file });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.ok(server.port > 0);
    const want: Record<string, string> = {
      '/': 'text/html; charset=utf-8', '/index.html': 'text/html; charset=utf-8', '/app.js': 'text/javascript; charset=utf-8',
      '/preprocess.js': 'text/javascript; charset=utf-8', '/style.css': 'text/css; charset=utf-8',
      '/ort/ort.wasm.min.mjs': 'text/javascript; charset=utf-8', '/ort/ort-wasm-simd-threaded.mjs': 'text/javascript; charset=utf-8',
      '/ort/ort-wasm-simd-threaded.wasm': 'application/wasm', '/model.onnx': 'application/octet-stream', '/model.json': 'application/json; charset=utf-8',
    };
    assert.equal(ORT_FILES.length, 3);
    for (const [p, type] of Object.entries(want)) {
      const r = await request(server.port, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['content-type'], type, p);
      assert.equal(Number(r.headers['content-length']), r.body.length, p);
      assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', p);
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', p);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
    }
    const wasm = await request(server.port, '/ort/ort-wasm-simd-threaded.wasm');
    assert.deepEqual([...wasm.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]); // \0asm
    assert.deepEqual((await request(server.port, '/model.onnx')).body, fs.readFileSync(file));
    const json = JSON.parse((await request(server.port, '/model.json')).body.toString()) as WebModelJson;
    assert.deepEqual(json, { file: 'tiny.onnx', bytes: fs.statSync(file).size, info: predictorInfo(file, fs.readFileSync(file)) });
    assert.deepEqual(json.info.classNames, ['x', 'y', 'z']);
    assert.match((await request(server.port, '/')).body.toString(), /<script type="module" src="app.js">/);
    // a query string does not change what is served
    assert.equal((await request(server.port, '/app.js?v=2')).status, 200);
    const head = await request(server.port, '/model.onnx', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), fs.statSync(file).size);
    assert.equal(head.body.length, 0);
    // localhost by name is the same machine
    assert.equal((await request(server.port, '/', { host: `localhost:${server.port}` })).status, 200);
  } finally {
    await server.close();
  }
});

test('refuses traversal, unknown files, other methods and foreign hosts', async () => {
  const server = await startWebServer({ model: file });
  try {
    const traversal = [
      '/../package.json', '/ort/../../package.json', '/ort/../index.html', '/%2e%2e/package.json', '/%2E%2E%2Fpackage.json', '/ort/..%2f..%2fpackage.json',
      '/..\\package.json', '/ort/%5c..%5cpackage.json', '/./index.html', '/index.html%00.png', '//etc/passwd/..', '/ort/.',
    ];
    for (const p of traversal) {
      const r = await request(server.port, p);
      assert.equal(r.status, 400, p);
      assert.equal(r.body.toString(), 'bad path\n', p);
    }
    const unknown = ['/package.json', '/web/index.html', '/src/web/server.ts', '/ort/ort.min.mjs', '/ort/ort-wasm-simd-threaded.jsep.wasm', '/ort/', '/model', '/tiny.onnx', '/etc/passwd', '/index.htm', '/INDEX.HTML', '//index.html'];
    for (const p of unknown) {
      const r = await request(server.port, p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.toString(), 'not found\n', p);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await request(server.port, '/', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    // a DNS name rebound to 127.0.0.1 arrives with its own Host header
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1:${server.port + 1}`, '10.0.0.1']) {
      assert.equal((await request(server.port, '/model.onnx', { host })).status, 421, host);
    }
  } finally {
    await server.close();
  }
});

test('non-loopback hosts need allowRemote; models the page cannot run are refused by name', async () => {
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.1.2.3') && isLoopback('::1') && isLoopback('[::1]') && isLoopback('localhost'));
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('::') && !isLoopback('192.168.1.2') && !isLoopback('example.com') && !isLoopback('128.0.0.1'));
  await assert.rejects(startWebServer({ model: file, host: '0.0.0.0' }), /host 0\.0\.0\.0 is not a loopback address/);
  await assert.rejects(startWebServer({ model: path.join(dir, 'm.safetensors') }), /m\.safetensors: expected an \.onnx file/);
  await assert.rejects(startWebServer({ model: path.join(dir, 'missing.onnx') }), /missing\.onnx: cannot read it/);
  const bare = path.join(dir, 'bare.onnx');
  exportOnnx(model, randn([1, 3, 8, 8]), { file: bare });
  await assert.rejects(startWebServer({ model: bare }), /bare\.onnx: no preprocessing metadata \(mean, std, crop\)/);
  const vector = path.join(dir, 'vector.onnx');
  exportOnnx(new Linear(5, 2) as unknown as AnyModule, randn([1, 5]), { file: vector });
  await assert.rejects(startWebServer({ model: vector }), /vector\.onnx: the page runs image models .* this one takes \[5\]/);
});

/** Starts `convkit web`, waits for the URL it prints. */
async function startCli(args: string[]): Promise<{ url: string; child: ReturnType<typeof spawn>; out: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'web', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no URL within 20 s: ${out}`)), 20_000);
    const look = (): void => {
      const m = /open (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]); }
    };
    child.stdout!.on('data', look);
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`exited with ${code}: ${out}`)); });
  });
  return { url, child, out: () => out };
}

const exitOf = (child: ReturnType<typeof spawn>): Promise<number | null> => new Promise((resolve) => child.on('exit', (code) => resolve(code)));

test('convkit web prints the URL, serves, and stops cleanly on SIGTERM and SIGINT', async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const { url, child, out } = await startCli([file, '--port', '0']);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(out(), /serving .*tiny\.onnx \(tiny, input \[3, 8, 8\], 3 classes\)/);
    const res = await fetch(new URL('model.json', url));
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as WebModelJson).info.modelName, 'tiny');
    const exited = exitOf(child);
    child.kill(signal);
    assert.equal(await exited, 0, out());
    assert.match(out(), new RegExp(`stopped \\(${signal}\\)`));
    await assert.rejects(fetch(url)); // nothing listens any more
  }
});

test('convkit web: --help, and bad usage exits 2 with the reason', () => {
  const run = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [MAIN, 'web', ...args], { encoding: 'utf8', timeout: 60_000 });
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(String(help.stdout), /usage: convkit web <model\.onnx>/);
  const remote = run(file, '--host', '0.0.0.0');
  assert.equal(remote.status, 2);
  assert.match(String(remote.stderr), /--host 0\.0\.0\.0 is not a loopback address.*--allow-remote/);
  assert.equal(run(file, '--port', '70000').status, 2);
  const notOnnx = run(path.join(dir, 'x.safetensors'));
  assert.equal(notOnnx.status, 2);
  assert.match(String(notOnnx.stderr), /expected an \.onnx file/);
  assert.equal(run().status, 2);
  const missing = run(path.join(dir, 'missing.onnx'));
  assert.equal(missing.status, 1);
  assert.match(String(missing.stderr), /missing\.onnx: cannot read it/);
});
