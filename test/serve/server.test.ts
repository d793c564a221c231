// The inference server over real HTTP on 127.0.0.1: each endpoint's answer against a direct
// predictor run, dynamic batching (concurrent requests answered from one batch, each with its own
// result, as the batch-size histogram shows), health checks answered while a batch runs, the
// queue limit (503 + Retry-After), the timeout (504), the API-key rule, and every refusal of bad
// input as a JSON error after which the server still serves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { tensor } from '../../src/engine/index.js';
import { encodePng } from '../../src/io/index.js';
import { loadPredictor, predictFiles } from '../../src/deploy/index.js';
import { startServer, type InferenceServer } from '../../src/serve/index.js';
import { SLOW_SIDE, dir, inferBody, lyingPng, metric, request, slowModel, tinyModel, wave } from './helpers.js';

after(() => fs.rmSync(dir, { recursive: true, force: true }));

const tiny = tinyModel();
const slow = slowModel();
const SAMPLE = 3 * 8 * 8;

async function withServer(o: Partial<Parameters<typeof startServer>[0]>, fn: (s: InferenceServer) => Promise<void>): Promise<void> {
  const s = await startServer({ models: [{ source: tiny }], port: 0, processMetrics: false, ...o });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** The predictor's logits for a [n, 3, 8, 8] batch. */
async function directLogits(file: string, data: Float32Array, shape: number[]): Promise<number[]> {
  const p = await loadPredictor(file);
  const x = tensor(data, { shape });
  try {
    return Array.from((await p.logits(x)).data);
  } finally {
    x.dispose();
    await p.dispose();
  }
}

const close = (a: number[], b: number[], tol = 1e-5): boolean => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])));

test('health, server and model metadata, readiness', async () => {
  await withServer({}, async (s) => {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.deepEqual((await request(s.port, '/v2/health/live')).json(), { live: true });
    assert.deepEqual((await request(s.port, '/v2/health/ready')).json(), { ready: true });
    const server = await request(s.port, '/v2');
    assert.equal(server.status, 200);
    assert.equal(server.headers['content-type'], 'application/json');
    assert.equal(server.json().name, 'convkit');
    const meta = await request(s.port, '/v2/models/tiny');
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.json(), {
      name: 'tiny', versions: [], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 8, 8] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }],
      parameters: { max_batch_size: 16, class_names: ['cat', 'dog', 'eel'], source_file: 'tiny.onnx' },
    });
    assert.deepEqual((await request(s.port, '/v2/models/tiny/ready')).json(), { name: 'tiny', ready: true });
    // the page of `convkit web` at /
    const page = await request(s.port, '/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /<script type="module" src="app.js">/);
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await request(s.port, '/model.json')).json<{ file: string }>().file, 'tiny.onnx');
    assert.equal(s.pageModel, 'tiny');
  });
});

test('infer: flat and nested data, several samples, classification; each as the predictor computes it', async () => {
  await withServer({}, async (s) => {
    const x = wave(2 * SAMPLE, 1);
    const want = await directLogits(tiny, x, [2, 3, 8, 8]);
    const flat = await request(s.port, '/v2/models/tiny/infer', { body: inferBody(x, [2, 3, 8, 8], { id: 'req-7' }) });
    assert.equal(flat.status, 200, flat.body.toString());
    const r = flat.json<{ model_name: string; id: string; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }>();
    assert.equal(r.model_name, 'tiny');
    assert.equal(r.id, 'req-7');
    assert.deepEqual(r.outputs.map((o) => [o.name, o.datatype, o.shape]), [['logits', 'FP32', [2, 3]]]);
    assert.ok(close(r.outputs[0].data, want), `${r.outputs[0].data} vs ${want}`);
    // nested as the shape: the same numbers
    const nested: number[][][][] = [];
    for (let n = 0; n < 2; n++) {
      nested.push(Array.from({ length: 3 }, (_, c) => Array.from({ length: 8 }, (_, y) => Array.from(x.subarray(n * SAMPLE + c * 64 + y * 8, n * SAMPLE + c * 64 + y * 8 + 8)))));
    }
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 3, 8, 8], data: nested }] });
    const nr = await request(s.port, '/v2/models/tiny/infer', { body });
    assert.deepEqual(nr.json<{ outputs: { data: number[] }[] }>().outputs[0].data, r.outputs[0].data);
    // Triton's classification extension: "value:index:label", best first
    const cls = await request(s.port, '/v2/models/tiny/infer', { body: inferBody(x, [2, 3, 8, 8], { outputs: [{ name: 'logits', parameters: { classification: 2 } }] }) });
    const out = cls.json<{ outputs: { datatype: string; shape: number[]; data: string[] }[] }>().outputs[0];
    assert.equal(out.datatype, 'BYTES');
    assert.deepEqual(out.shape, [2, 2]);
    const names = ['cat', 'dog', 'eel'];
    for (let n = 0; n < 2; n++) {
      const row = want.slice(n * 3, n * 3 + 3);
      const order = [0, 1, 2].sort((a, b) => row[b] - row[a]).slice(0, 2);
      assert.deepEqual(out.data.slice(n * 2, n * 2 + 2).map((d) => d.split(':').slice(1).join(':')), order.map((j) => `${j}:${names[j]}`));
      assert.ok(Math.abs(Number(out.data[n * 2].split(':')[0]) - row[order[0]]) < 1e-5);
    }
  });
});

test('classify: an image body gives the top-k that predictFiles gives for the same file', async () => {
  await withServer({}, async (s) => {
    const img = { channels: 3, height: 13, width: 11, data: Uint8Array.from({ length: 3 * 13 * 11 }, (_, i) => (i * 37) % 256) };
    const png = await encodePng(img);
    const file = path.join(dir, 'pic.png');
    fs.writeFileSync(file, png);
    const p = await loadPredictor(tiny);
    let want;
    try {
      for await (const rows of predictFiles(p, [file], { top: 3 })) want = rows[0].top;
    } finally {
      await p.dispose();
    }
    const r = await request(s.port, '/v1/models/tiny:classify?k=3', { body: png, headers: { 'Content-Type': 'image/png' } });
    assert.equal(r.status, 200, r.body.toString());
    const got = r.json<{ model_name: string; predictions: { index: number; label: string; probability: number }[] }>();
    assert.equal(got.model_name, 'tiny');
    assert.deepEqual(got.predictions.map((q) => q.label), want!.map((q) => q.label));
    got.predictions.forEach((q, i) => assert.ok(Math.abs(q.probability - want![i].probability) < 1e-5));
    const k1 = await request(s.port, '/v1/models/tiny:classify', { body: png });
    assert.equal(k1.json<{ predictions: unknown[] }>().predictions.length, 3); // k defaults to 5, at most the classes
  });
});

test('concurrent requests are answered from one batch, each with its own result', async () => {
  await withServer({ maxBatch: 8, maxDelayMs: 300 }, async (s) => {
    const inputs = Array.from({ length: 8 }, (_, i) => wave(SAMPLE, i));
    const want = await Promise.all(inputs.map((x) => directLogits(tiny, x, [1, 3, 8, 8])));
    const t0 = performance.now();
    const replies = await Promise.all(inputs.map((x) => request(s.port, '/v2/models/tiny/infer', { body: inferBody(x, [1, 3, 8, 8]) })));
    // a full batch leaves at once, without waiting out the 300 ms
    assert.ok(performance.now() - t0 < 290, `took ${performance.now() - t0} ms`);
    replies.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.ok(close(r.json<{ outputs: { data: number[] }[] }>().outputs[0].data, want[i]), `request ${i}`);
    });
    const text = (await request(s.port, '/metrics')).body.toString();
    assert.equal(metric(text, 'convkit_batch_size_count{model="tiny"}'), 1);
    assert.equal(metric(text, 'convkit_batch_size_sum{model="tiny"}'), 8);
    assert.equal(metric(text, 'convkit_batch_size_bucket{le="4",model="tiny"}'), 0);
    assert.equal(metric(text, 'convkit_requests_total{model="tiny",endpoint="infer",code="200"}'), 8);
    assert.equal(metric(text, 'convkit_request_duration_seconds_count{model="tiny",endpoint="infer"}'), 8);
    assert.equal(metric(text, 'convkit_queue_depth{model="tiny"}'), 0);
    // a lone request waits out the delay, then goes alone
    const t1 = performance.now();
    assert.equal((await request(s.port, '/v2/models/tiny/infer', { body: inferBody(inputs[0], [1, 3, 8, 8]) })).status, 200);
    assert.ok(performance.now() - t1 >= 290);
    const after = (await request(s.port, '/metrics')).body.toString();
    assert.equal(metric(after, 'convkit_batch_size_count{model="tiny"}'), 2);
    assert.equal(metric(after, 'convkit_batch_size_bucket{le="1",model="tiny"}'), 1);
  });
});

test('health checks answer while a batch runs; timeouts get 504', async () => {
  const s = await startServer({ models: [{ source: slow }], port: 0, maxBatch: 4, maxDelayMs: 0, processMetrics: false });
  try {
    const x = wave(4 * 3 * SLOW_SIDE * SLOW_SIDE, 0);
    const body = inferBody(x, [4, 3, SLOW_SIDE, SLOW_SIDE]);
    let done = 0;
    const t0 = performance.now();
    const running = request(s.port, '/v2/models/slow/infer', { body }).then((r) => { done = performance.now() - t0; return r; });
    // once the batch has left for the worker
    while (metric((await request(s.port, '/metrics')).body.toString(), 'convkit_batch_size_count{model="slow"}') !== 1) await new Promise((r) => setTimeout(r, 2));
    const h0 = performance.now();
    const live = await request(s.port, '/v2/health/live');
    const healthMs = performance.now() - h0;
    assert.equal(live.status, 200);
    assert.equal(done, 0, 'the batch was over before the health check: the model is too fast for this test');
    assert.equal((await running).status, 200);
    assert.ok(healthMs < Math.min(250, done / 2), `health took ${healthMs} ms during a batch of ${done} ms`);
  } finally {
    await s.close();
  }
  const t = await startServer({ models: [{ source: slow }], port: 0, maxBatch: 4, maxDelayMs: 0, timeoutMs: 20, processMetrics: false });
  try {
    const r = await request(t.port, '/v2/models/slow/infer', { body: inferBody(wave(4 * 3 * SLOW_SIDE * SLOW_SIDE, 0), [4, 3, SLOW_SIDE, SLOW_SIDE]) });
    assert.equal(r.status, 504);
    assert.match(r.json<{ error: string }>().error, /no answer within the request timeout of 20 ms/);
    assert.equal((await request(t.port, '/v2/health/ready')).status, 200);
  } finally {
    await t.close();
  }
});

test('a model holding as many requests as it may refuses the next before reading its body', async () => {
  await withServer({ maxBatch: 1, maxQueue: 1 }, async (s) => {
    const body = inferBody(wave(SAMPLE, 0), [1, 3, 8, 8]);
    // two requests whose bodies are still arriving: taken in, neither queued yet
    const open = [0, 1].map(() => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/v2/models/tiny/infer', method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } });
      const reply = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => { res.resume(); resolve(res.statusCode ?? 0); });
        req.on('error', reject);
      });
      req.write(body.slice(0, 10));
      return { req, reply };
    });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const refused = await request(s.port, '/v2/models/tiny/infer', { body });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(refused.json<{ error: string }>().error, /tiny is busy: 2 requests in progress, the limit is 2/);
    assert.ok(performance.now() - t0 < 500);
    // the two finish their bodies and are answered
    for (const o of open) o.req.end(body.slice(10));
    assert.deepEqual(await Promise.all(open.map((o) => o.reply)), [200, 200]);
    assert.equal((await request(s.port, '/v2/models/tiny/infer', { body })).status, 200);
  });
});

test('a client that disconnects leaves the queue', async () => {
  await withServer({ maxBatch: 2, maxDelayMs: 60_000, maxQueue: 1 }, async (s) => {
    const body = inferBody(wave(SAMPLE, 0), [1, 3, 8, 8]);
    const req = http.request({ host: '127.0.0.1', port: s.port, path: '/v2/models/tiny/infer', method: 'POST', headers: { 'Content-Length': Buffer.byteLength(body) } });
    req.on('error', () => undefined);
    req.end(body);
    // one sample of two: it waits for the batch to fill
    while (metric((await request(s.port, '/metrics')).body.toString(), 'convkit_queue_depth{model="tiny"}') !== 1) await new Promise((r) => setTimeout(r, 5));
    req.destroy();
    while (metric((await request(s.port, '/metrics')).body.toString(), 'convkit_queue_depth{model="tiny"}') !== 0) await new Promise((r) => setTimeout(r, 5));
    // its place is free: a full batch of two goes at once
    const r = await request(s.port, '/v2/models/tiny/infer', { body: inferBody(wave(2 * SAMPLE, 0), [2, 3, 8, 8]) });
    assert.equal(r.status, 200);
  });
});

test('bad input gets a JSON error with its 4xx, and the server goes on', async () => {
  await withServer({ maxBodyBytes: 100_000 }, async (s) => {
    const png = await encodePng({ channels: 3, height: 4, width: 4, data: new Uint8Array(48).fill(9) });
    const good = inferBody(wave(SAMPLE, 0), [1, 3, 8, 8]);
    const cases: [string, string, { method?: string; body?: string | Buffer; headers?: Record<string, string> }, number, RegExp][] = [
      ['malformed JSON', '/v2/models/tiny/infer', { body: '{"inputs": [' }, 400, /malformed JSON/],
      ['not an object', '/v2/models/tiny/infer', { body: '[1, 2]' }, 400, /an infer request is a JSON object, got an array/],
      ['no inputs', '/v2/models/tiny/infer', { body: '{}' }, 400, /'inputs' must be an array of tensors, got none/],
      ['wrong input name', '/v2/models/tiny/infer', { body: good.replace('"input"', '"x"') }, 400, /takes the input 'input', got 'x'/],
      ['wrong datatype', '/v2/models/tiny/infer', { body: good.replace('FP32', 'INT64') }, 400, /datatype must be FP32, got INT64/],
      ['wrong shape', '/v2/models/tiny/infer', { body: inferBody(wave(3 * 9 * 8, 0), [1, 3, 9, 8]) }, 400, /shape must be \[N, 3, 8, 8\] with N from 1 to 16, got \[1, 3, 9, 8\]/],
      ['batch over the max', '/v2/models/tiny/infer', { body: inferBody(wave(17 * SAMPLE, 0).map(() => 0), [17, 3, 8, 8]) }, 400, /with N from 1 to 16, got \[17, 3, 8, 8\]/],
      ['shape and data differ', '/v2/models/tiny/infer', { body: inferBody(wave(SAMPLE - 1, 0), [1, 3, 8, 8]) }, 400, /its shape needs 192 values, data holds 191/],
      ['too much data', '/v2/models/tiny/infer', { body: inferBody(wave(SAMPLE + 5, 0), [1, 3, 8, 8]) }, 400, /data holds more values than its shape's 192/],
      ['strings in data', '/v2/models/tiny/infer', { body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 8, 8], data: ['1'] }] }) }, 400, /data must hold numbers \(datatype FP32\), found string at value 0/],
      ['deep nesting', '/v2/models/tiny/infer', { body: `${'['.repeat(5000)}${']'.repeat(5000)}` }, 400, /nested deeper than the limit of 32/],
      ['binary data', '/v2/models/tiny/infer', { body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 8, 8], parameters: { binary_data_size: 768 } }] }) }, 400, /binary tensor data is not supported/],
      ['bad classification', '/v2/models/tiny/infer', { body: inferBody(wave(SAMPLE, 0), [1, 3, 8, 8], { outputs: [{ name: 'logits', parameters: { classification: 9 } }] }) }, 400, /classification must be an integer from 1 to 3, got 9/],
      ['unknown model', '/v2/models/nope/infer', { body: good }, 404, /unknown model 'nope': this server has tiny/],
      ['unknown model (metadata)', '/v2/models/..%2f..%2fetc', {}, 400, /bad path/],
      ['climbing path', '/v2/models/../../etc/passwd', {}, 400, /bad path/],
      ['versions', '/v2/models/tiny/versions/1', {}, 404, /has no versions/],
      ['GET on infer', '/v2/models/tiny/infer', {}, 405, /infer takes POST, not GET/],
      ['DELETE on metadata', '/v2/models/tiny', { method: 'DELETE' }, 405, /takes GET, HEAD, not DELETE/],
      ['POST on health', '/v2/health/live', { body: '' }, 405, /takes GET, HEAD/],
      ['unknown endpoint', '/v3/whatever', {}, 404, /no such endpoint/],
      ['not an image', '/v1/models/tiny:classify', { body: 'hello, world' }, 400, /expected a JPEG, PNG or WebP file, found 12 bytes starting 68 65 6c 6c/],
      ['truncated PNG', '/v1/models/tiny:classify', { body: png.subarray(0, 40) }, 400, /expected a complete PNG file, found a corrupt or truncated one/],
      ['empty image', '/v1/models/tiny:classify', { body: '' }, 400, /the request body is empty/],
      ['decompression bomb', '/v1/models/tiny:classify', { body: lyingPng(png, 20000, 20000) }, 400, /too large: 20000 x 20000 pixels, limit 40000000/],
      ['bad k', '/v1/models/tiny:classify?k=0', { body: png }, 400, /k must be a positive integer, got '0'/],
      ['unknown model (classify)', '/v1/models/nope:classify', { body: png }, 404, /unknown model 'nope'/],
      ['body too large', '/v2/models/tiny/infer', { body: Buffer.alloc(100_001, 32) }, 413, /larger than the limit of 100000 bytes/],
    ];
    for (const [what, p, o, status, message] of cases) {
      const t0 = performance.now();
      const r = await request(s.port, p, o);
      assert.equal(r.status, status, `${what}: ${r.body.toString().slice(0, 200)}`);
      assert.equal(r.headers['content-type'], 'application/json', what);
      assert.match(r.json<{ error: string }>().error, message, what);
      assert.ok(performance.now() - t0 < 2000, `${what} took ${performance.now() - t0} ms`);
    }
    assert.equal((await request(s.port, '/v2/models/tiny/infer', { body: good })).status, 200);
    const text = (await request(s.port, '/metrics')).body.toString();
    assert.equal(metric(text, 'convkit_errors_total{model="tiny",code="405"}'), 2);
    assert.equal(metric(text, 'convkit_errors_total{model="",code="404"}'), 3); // two unknown models, one unknown endpoint
  });
});

test('API keys: bearer token on every endpoint but health; non-loopback hosts need a key or insecure', async () => {
  await withServer({ apiKey: 'sesame-0123' }, async (s) => {
    const body = inferBody(wave(SAMPLE, 0), [1, 3, 8, 8]);
    assert.equal((await request(s.port, '/v2/health/live')).status, 200);
    assert.equal((await request(s.port, '/v2/health/ready')).status, 200);
    for (const auth of [undefined, 'Bearer sesame-012', 'Bearer sesame-01234', 'Basic sesame-0123', 'sesame-0123', 'Bearer ']) {
      const headers = auth === undefined ? undefined : { Authorization: auth };
      for (const [p, o] of [['/v2/models/tiny/infer', { body }], ['/v2/models/tiny', {}], ['/metrics', {}], ['/', {}], ['/v2', {}]] as const) {
        const r = await request(s.port, p, { ...o, headers });
        assert.equal(r.status, 401, `${p} with ${auth}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
      }
    }
    const ok = await request(s.port, '/v2/models/tiny/infer', { body, headers: { Authorization: 'Bearer sesame-0123' } });
    assert.equal(ok.status, 200);
    assert.equal((await request(s.port, '/v2/models/tiny', { headers: { Authorization: 'bearer sesame-0123' } })).status, 200);
  });
  await assert.rejects(startServer({ models: [{ source: tiny }], host: '0.0.0.0', port: 0 }), /host 0\.0\.0\.0 is not a loopback address: other machines could use the models/);
  await assert.rejects(startServer({ models: [{ source: tiny }], port: 0, apiKey: 'short' }), /at least 8 characters/);
  // a DNS name rebound to 127.0.0.1 arrives with its own Host header
  await withServer({}, async (s) => {
    assert.equal((await request(s.port, '/v2/models/tiny', { headers: { Host: 'evil.example' } })).status, 421);
    assert.equal((await request(s.port, '/v2/models/tiny', { headers: { Host: `localhost:${s.port}` } })).status, 200);
  });
});

test('several models, names from files or given; clashes and bad sources are refused at start', async () => {
  await withServer({ models: [{ source: tiny }, { source: tiny, name: 'other' }] }, async (s) => {
    assert.deepEqual(s.models.map((m) => m.name), ['tiny', 'other']);
    assert.equal((await request(s.port, '/v2/models/other/infer', { body: inferBody(wave(SAMPLE, 0), [1, 3, 8, 8]) })).status, 200);
  });
  await assert.rejects(startServer({ models: [{ source: tiny }, { source: tiny }], port: 0 }), /two models are named 'tiny'/);
  await assert.rejects(startServer({ models: [{ source: path.join(dir, 'missing.onnx') }], port: 0 }), /missing\.onnx: no such file or folder/);
  await assert.rejects(startServer({ models: [{ source: tiny, name: '../x' }], port: 0 }), /'\.\.\/x' is not a usable model name/);
  await assert.rejects(startServer({ models: [{ source: tiny }], port: 0, maxBatch: 0 }), /maxBatch must be an integer from 1 to 4096, got 0/);
});
