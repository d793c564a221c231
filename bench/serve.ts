// Issue 16's serving goals, on loopback: `convkit serve` in a child process, load from autocannon
// (its programmatic API) in this one, ResNet-18 at 224 px and the default Fashion-MNIST model
// (airbench_m: the trained checkpoint when there is one, else random weights; speed does not
// depend on them), each image sent to the classify endpoint as a PNG.
//   - dynamic batching: saturated throughput at --max-batch 16 against --max-batch 1 (goal >= 2x),
//     and the p99 latency at half the saturated rate (open loop, evenly spaced: paced_load.ts)
//     against one request at a time (goal < 2x)
//   - 20,000 requests at saturation: errors (goal 0) and the server's resident memory, sampled,
//     last quarter against the second (goal within 5 %)
//   - 2x overload for 30 s: how fast the excess gets its 503 (a probe client's requests), whether
//     accepted requests complete, memory, and a normal answer afterwards
//   - a stream with 10 % malformed bodies: every bad one its 400, every good one its 200
//   node dist-dev/bench/serve.js [--models resnet18,airbench_m] [--size 224] [--seconds 10]
//     [--requests 20000] [--overload-seconds 30] [--connections 32] [--quick] [--json out.json]
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import autocannon, { type Result } from 'autocannon';
import ort from 'onnxruntime-node';
import { manualSeed } from '../src/engine/index.js';
import { encodePng } from '../src/io/index.js';
import { exportOnnx } from '../src/export/index.js';
import { loadExportSource } from '../src/export/source.js';
import '../src/models/index.js';
import { arg, emit, listArg, median } from './common.js';
import { pacedLoad } from './paced_load.js';
import { DEFAULT_RUN } from './train_cli.js';
import type { BenchTable } from './results.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
// speed does not depend on the weights: the default run's when there, never trained for this
const CKPT = path.join(DEFAULT_RUN, 'model.safetensors');
const quick = process.argv.includes('--quick');
const models = listArg('models') ?? ['resnet18', 'airbench_m'];
const size = arg('size', quick ? 64 : 224);
const seconds = arg('seconds', quick ? 2 : 10);
const amount = arg('requests', quick ? 600 : 20_000);
const overloadSeconds = arg('overload-seconds', quick ? 3 : 30);
const connections = arg('connections', 32);
/** the servers' queue limit: above the saturation runs' connections (no 503 there), below the overload's */
const maxQueue = 2 * connections;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-serve-'));

interface Served {
  child: ChildProcess;
  port: number;
  stop(): Promise<number | null>;
}

/** `convkit serve` on a free port, once it says where it listens. */
async function serve(file: string, extra: string[]): Promise<Served> {
  const child = spawn(process.execPath, [MAIN, 'serve', file, '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const t0 = Date.now();
  const port = await new Promise<number>((resolve, reject) => {
    const look = (): void => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
      else if (child.exitCode !== null || Date.now() - t0 > 120_000) reject(new Error(`convkit serve did not start: ${out}`));
      else setTimeout(look, 50);
    };
    look();
  });
  return { child, port, stop: () => { child.kill('SIGTERM'); return exited; } };
}

/** The child's resident memory in MB (Linux). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function sampleRss(pid: number, everyMs: number): { stop(): number[] } {
  const xs: number[] = [];
  const t = setInterval(() => { try { xs.push(rssMb(pid)); } catch { /* exited */ } }, everyMs);
  return { stop: () => { clearInterval(t); return xs; } };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function post(port: number, p: string, body: Buffer): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: 'POST', headers: { 'Content-Length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * What batching can give at most: ONNX Runtime alone on the served file (no HTTP, no decoding),
 * as the server's one worker runs it (all cores), images per second at batch 1 and at 16.
 */
async function engineRates(file: string, input: number[]): Promise<[number, number]> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1 });
  try {
    const rate = async (batch: number): Promise<number> => {
      const x = new ort.Tensor('float32', Float32Array.from({ length: batch * input.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), [batch, ...input]);
      const times: number[] = [];
      for (let i = 0; i < 13; i++) {
        const t0 = performance.now();
        await session.run({ [session.inputNames[0]]: x });
        if (i >= 3) times.push(performance.now() - t0);
      }
      return (1000 * batch) / median(times);
    };
    return [await rate(1), await rate(16)];
  } finally {
    await session.release();
  }
}

/** The model's ONNX file and a test image for it. */
async function prepare(name: string): Promise<{ file: string; image: Buffer; label: string; input: number[] }> {
  manualSeed(0);
  const fromCkpt = name === 'airbench_m' && fs.existsSync(CKPT);
  const src = loadExportSource(fromCkpt ? CKPT : name, name === 'resnet18' ? { imageSize: [size, size] } : {});
  const file = path.join(dir, `${name}.onnx`);
  try {
    exportOnnx(src.model, src.example, { file, metadata: src.metadata });
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
  const [c, h, w] = src.metadata.inputSize!;
  // a smooth pattern a little larger than the input: resized and cropped like a photo
  const H = Math.round(h * 1.15);
  const W = Math.round(w * 1.15);
  const data = Uint8Array.from({ length: c * H * W }, (_, i) => Math.round(127 + 120 * Math.sin(i / 97) * Math.cos(i / (W * 13))));
  const image = await encodePng({ channels: c, height: H, width: W, data });
  return { file, image, label: `${name} ${c}x${h}x${w}${fromCkpt ? ' (trained)' : ''}`, input: [c, h, w] };
}

async function load(port: number, p: string, body: Buffer, o: { connections: number; duration?: number; amount?: number; rate?: number }): Promise<Result> {
  return autocannon({
    url: `http://127.0.0.1:${port}${p}`, method: 'POST', body, connections: o.connections, timeout: 30,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? seconds }), ...(o.rate ? { overallRate: Math.max(1, Math.round(o.rate)) } : {}),
  });
}

/** answered requests (2xx) per second: refusals are fast and would inflate the rate */
const ok = (r: Result): number => r['2xx'] / r.duration;
const PATH = (name: string): string => `/v1/models/${name}:classify?k=1`;
const rows: { batching: (string | number)[][]; soak: (string | number)[][]; overload: (string | number)[][]; mixed: (string | number)[][] } = { batching: [], soak: [], overload: [], mixed: [] };

for (const name of models) {
  const { file, image, label, input } = await prepare(name);
  const [alone1, alone16] = await engineRates(file, input);
  const p = PATH(name);
  // throughput at --max-batch 1, then everything else at 16
  const one = await serve(file, ['--max-batch', '1', '--max-queue', String(maxQueue)]);
  await load(one.port, p, image, { connections, duration: 1 });
  const sat1 = await load(one.port, p, image, { connections });
  await one.stop();

  const s = await serve(file, ['--max-batch', '16', '--max-queue', String(maxQueue)]);
  await load(s.port, p, image, { connections, duration: 1 });
  const sat16 = await load(s.port, p, image, { connections });
  const single = await load(s.port, p, image, { connections: 1 });
  const rate = ok(sat16);
  const half = await pacedLoad(s.port, p, image, rate / 2, 2 * seconds);
  rows.batching.push([label, ok(sat1), rate, rate / ok(sat1), alone1, alone16, alone16 / alone1, single.latency.p50, half.p99, half.p99 / single.latency.p50, sat1.non2xx + sat16.non2xx + half.failed]);

  // a fixed number of requests at saturation, memory sampled
  const rss = sampleRss(s.child.pid!, 100);
  const soak = await load(s.port, p, image, { connections, amount });
  const xs = rss.stop();
  const q = Math.floor(xs.length / 4);
  const second = mean(xs.slice(q, 2 * q));
  const last = mean(xs.slice(3 * q));
  rows.soak.push([label, amount, soak.duration, ok(soak), soak.errors + soak.timeouts + soak.non2xx, second, last, (last - second) / second]);

  // twice the saturated rate, with a probe measuring how fast a refusal comes
  const orss = sampleRss(s.child.pid!, 100);
  const probes: { status: number; ms: number }[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      probes.push(await post(s.port, p, image));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  // enough connections to hold more requests than the queue takes
  const over = await load(s.port, p, image, { connections: 4 * maxQueue, duration: overloadSeconds, rate: 2 * rate });
  probing = false;
  await probe;
  const oxs = orss.stop();
  const refusedMs = probes.filter((r) => r.status === 503).map((r) => r.ms);
  // what was queued when the load stopped drains first
  await new Promise((r) => setTimeout(r, 1000));
  const after = await post(s.port, p, image);
  const codes = over.statusCodeStats;
  rows.overload.push([
    label, 2 * rate, overloadSeconds, codes['200']?.count ?? 0, codes['503']?.count ?? 0, over.errors + over.timeouts,
    refusedMs.length ? median(refusedMs) : '-', refusedMs.length ? Math.max(...refusedMs) : '-', Math.max(...oxs), after.status,
  ]);

  // one body in ten is not an image
  const bad = Buffer.from('this is not an image, it is text');
  const mixedRequests = Array.from({ length: 10 }, (_, i) => ({ method: 'POST', path: p, body: i === 9 ? bad : image }));
  const mixedAmount = quick ? 200 : 2000;
  const mixed = await autocannon({ url: `http://127.0.0.1:${s.port}`, connections: 10, amount: mixedAmount, requests: mixedRequests, timeout: 30 });
  const mc = mixed.statusCodeStats;
  rows.mixed.push([label, mixedAmount, mc['200']?.count ?? 0, mc['400']?.count ?? 0, mixed.errors + mixed.timeouts + (mixed.non2xx - (mc['400']?.count ?? 0))]);
  const code = await s.stop();
  if (code !== 0) throw new Error(`convkit serve exited ${code} after SIGTERM`);
}
fs.rmSync(dir, { recursive: true, force: true });

const cores = os.availableParallelism();
const tables: BenchTable[] = [
  {
    title: `Dynamic batching: classify requests (PNG bodies) answered per second with ${connections} connections, max-batch 1 vs 16 (max delay 5 ms, max queue ${maxQueue}, 1 worker, ${cores} cores); 'ORT alone': the same file on ONNX Runtime in this process, no HTTP or decoding (the ceiling of batching's gain); latency in ms; the half rate is sent open-loop at even intervals for ${2 * seconds} s, latency from each request's scheduled time (as wrk2)`,
    headers: ['model', 'req/s, max-batch 1', 'req/s, max-batch 16', 'speed-up (goal >= 2)', 'ORT alone, img/s at batch 1', 'at batch 16', 'the most batching can give', 'one at a time p50', 'p99 at half the saturated rate', 'ratio (goal < 2)', 'non-2xx'],
    rows: rows.batching,
  },
  {
    title: 'Requests at saturation: errors and the server\'s resident memory (MB), second quarter vs last',
    headers: ['model', 'requests', 'seconds', 'req/s', 'errors (goal 0)', 'RSS 2nd quarter', 'RSS last quarter', 'growth (goal within 5 %)'],
    rows: rows.soak,
  },
  {
    title: '2x overload: answered and refused requests, the time a probe waits for its 503 (ms), peak RSS (MB), and a request afterwards',
    headers: ['model', 'offered req/s', 'seconds', '200', '503', 'errors / timeouts', '503 median ms', '503 max ms', 'peak RSS', 'status 1 s after'],
    rows: rows.overload,
  },
  {
    title: 'A stream with 10 % malformed bodies (text instead of an image)',
    headers: ['model', 'requests', '200', '400', 'other'],
    rows: rows.mixed,
  },
];
emit('serve', tables);
