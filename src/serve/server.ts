// The inference server: the Open Inference Protocol (KServe v2) over HTTP/JSON, an image
// endpoint with top-k, the browser page at `/`, and Prometheus metrics, in front of one dynamic
// batcher and worker pool per model. Every input from outside is bounded (body size, queue
// length, time, image pixels) and every refusal is a JSON error with its status; model names in
// URLs are keys of the loaded models' map and nothing else.
import * as http from 'node:http';
import * as net from 'node:net';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { decodeImageForModel, decodePlan } from '../deploy/files.js';
import { topK, type PredictorInfo } from '../deploy/predictor.js';
import { parseJson, type JsonValue } from '../io/json.js';
import { packageVersion } from '../io/version.js';
import { createPageSite, hostAllowed, suspiciousPath, type PageSite } from '../web/server.js';
import { isLoopback } from '../web/hosts.js';
import { bearerCheck } from './auth.js';
import { BatchError, Batcher } from './batcher.js';
import { createMetrics, type ServeMetrics } from './metrics.js';
import { loadModelBytes, type ModelBytes, type ModelSource } from './models.js';
import { WorkerPool } from './pool.js';
import { inferResponse, modelMetadata, parseInferRequest, ProtocolError, type ModelSignature } from './protocol.js';

export interface ServeOptions {
  /** the models, in order (the first image model with an .onnx source also gets the page at `/`) */
  models: (ModelSource | ModelBytes)[];
  /** default 8080; 0: a free port */
  port?: number;
  /** default 127.0.0.1; any other address needs apiKey or insecure */
  host?: string;
  /** samples per batch at most (default 16) */
  maxBatch?: number;
  /** how long a request waits for others to join its batch (default 5 ms) */
  maxDelayMs?: number;
  /** worker threads per model, each with its own ONNX Runtime session (default 1) */
  workers?: number;
  /** ONNX Runtime's threads per worker (default: the cores shared among a model's workers) */
  threads?: number;
  /** requests waiting per model beyond which new ones get 503 (default 8 x maxBatch) */
  maxQueue?: number;
  /** a request unanswered after this many milliseconds gets 504 (default 30000) */
  timeoutMs?: number;
  /** the largest request body (default 64 MiB) */
  maxBodyBytes?: number;
  /** the most pixels an uploaded image's header may declare (default 40 megapixels) */
  maxImagePixels?: number;
  /** a bearer token every request but the health checks must carry */
  apiKey?: string | null;
  /** serve a non-loopback address without an API key */
  insecure?: boolean;
  /** process metrics (CPU, memory, event loop lag) in /metrics as well (default true) */
  processMetrics?: boolean;
}

export interface ServedModelInfo {
  name: string;
  source: string;
  info: PredictorInfo;
  signature: ModelSignature;
}

export interface InferenceServer {
  /** e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly models: ServedModelInfo[];
  readonly metrics: ServeMetrics;
  /** the model the page at `/` runs, if any */
  readonly pageModel: string | null;
  /**
   * Graceful stop: refuses new connections and requests (503), lets what is queued and running
   * finish and be answered, then closes connections and workers.
   */
  close(): Promise<void>;
}

interface Served extends ServedModelInfo {
  pool: WorkerPool;
  batcher: Batcher;
  /** the model takes images: how to preprocess an upload */
  image: { mean: number[]; std: number[] } | null;
  /** inference requests taken in and not yet answered (body arriving, decoding, queued, running) */
  admitted: number;
  /** beyond this many, a request is refused before its body is read */
  admitLimit: number;
}

const DEFAULTS = { port: 8080, maxBatch: 16, maxDelayMs: 5, workers: 1, timeoutMs: 30_000, maxBodyBytes: 64 << 20, maxImagePixels: 40_000_000 };
/** JSON nested deeper than this is refused before parsing (a [N, C, H, W] tensor nests 5 deep inside the request) */
const MAX_JSON_DEPTH = 32;

/** Refusals of bad options name the option and what it takes. */
function checkOptions(o: ServeOptions): void {
  const int = (k: keyof ServeOptions, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
      throw new RangeError(`serve: ${k} must be an integer from ${min} to ${max}, got ${String(v)}`);
    }
  };
  int('port', 0, 65535);
  int('maxBatch', 1, 4096);
  int('maxDelayMs', 0, 60_000);
  int('workers', 1, 256);
  int('threads', 1, 1024);
  int('maxQueue', 1, 1 << 20);
  int('timeoutMs', 1, 24 * 3600_000);
  int('maxBodyBytes', 1, 2 ** 31 - 1);
  int('maxImagePixels', 1, 0x3fff * 0x3fff);
  if (o.models.length === 0) throw new Error('serve: no model to serve');
  if (o.apiKey !== undefined && o.apiKey !== null && o.apiKey.length < 8) throw new RangeError('serve: the API key must have at least 8 characters');
}

type Reply = { status: number; body: JsonValue | string; headers?: Record<string, string> };

const json = (status: number, body: JsonValue, headers?: Record<string, string>): Reply => ({ status, body, headers });
const error = (status: number, message: string, headers?: Record<string, string>): Reply => json(status, { error: message }, headers);

function send(res: http.ServerResponse, r: Reply): void {
  if (res.headersSent) return;
  const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  res.writeHead(r.status, {
    'Content-Type': typeof r.body === 'string' ? 'text/plain; version=0.0.4; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text), 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store', ...r.headers,
  });
  res.end(text);
}

/** The body, or a Reply (413) once it passes `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | Reply> {
  const tooLarge = (): Reply => error(413, `the request body is larger than the limit of ${limit} bytes`, { Connection: 'close' });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(tooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

async function loadServed(src: ModelSource | ModelBytes, o: Required<Pick<ServeOptions, 'maxBatch' | 'maxDelayMs' | 'workers'>> & ServeOptions, metrics: ServeMetrics): Promise<{ served: Served; bytes: ModelBytes }> {
  const mb = 'bytes' in src ? src : await loadModelBytes(src);
  const threads = o.threads ?? Math.max(1, Math.floor(availableParallelism() / o.workers));
  const pool = await WorkerPool.start(mb.name, mb.bytes, o.workers, threads);
  try {
    const declared = pool.meta.inputShape.slice(1);
    const sampleShape = mb.info.inputSize ?? (declared.every((d) => typeof d === 'number') ? declared as number[] : null);
    if (!sampleShape) throw new Error(`${mb.source}: the sample shape is neither in its metadata nor fixed in the graph ([${pool.meta.inputShape.join(', ')}])`);
    // one zero sample: the output's width (a graph may not declare it), and the first run's set-up out of the way
    const probe = await pool.run(new Float32Array(sampleShape.reduce((a, b) => a * b, 1)), [1, ...sampleShape]);
    if (probe.dims.length !== 2 || probe.dims[0] !== 1) throw new Error(`${mb.source}: expected a classifier's output [N, classes], got [${probe.dims.join(', ')}] for a batch of 1`);
    const classes = probe.dims[1];
    if (mb.info.classNames && mb.info.classNames.length !== classes) throw new Error(`${mb.source}: ${mb.info.classNames.length} class names for ${classes} outputs`);
    const signature: ModelSignature = {
      name: mb.name, inputName: pool.meta.inputName, outputName: pool.meta.outputName, sampleShape, classes, classNames: mb.info.classNames, maxBatch: o.maxBatch,
    };
    let image: Served['image'] = null;
    try {
      decodePlan(mb.info, mb.source);
      image = { mean: mb.info.mean!, std: mb.info.std! };
    } catch {
      image = null; // not an image model: /v2 infer only
    }
    const batcher = new Batcher(pool, {
      maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs, maxQueue: o.maxQueue ?? 8 * o.maxBatch, sampleShape,
      onBatch: (samples) => metrics.batchSize.observe({ model: mb.name }, samples),
      onQueue: (depth) => metrics.queueDepth.set({ model: mb.name }, depth),
    });
    metrics.queueDepth.set({ model: mb.name }, 0);
    // the queue, plus what the workers hold: refusing at the door keeps bodies and decodes bounded too
    const admitLimit = (o.maxQueue ?? 8 * o.maxBatch) + o.maxBatch * o.workers;
    return { served: { name: mb.name, source: mb.source, info: mb.info, signature, pool, batcher, image, admitted: 0, admitLimit }, bytes: mb };
  } catch (e) {
    await pool.close();
    throw e;
  }
}

/** Starts the server once every model is loaded and listening has begun. */
export async function startServer(opts: ServeOptions): Promise<InferenceServer> {
  checkOptions(opts);
  // an option given as undefined keeps its default
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as ServeOptions;
  const o = { ...DEFAULTS, ...given };
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const apiKey = o.apiKey ?? null;
  if (!loopback && apiKey === null && !o.insecure) {
    throw new Error(`host ${host} is not a loopback address: other machines could use the models; give an API key (every request must then carry it as a bearer token), or allow it without one explicitly (insecure)`);
  }
  const metrics = createMetrics({ processMetrics: o.processMetrics ?? true });
  const models = new Map<string, Served>();
  let page: { site: PageSite; model: string } | null = null;
  try {
    for (const src of o.models) {
      const { served, bytes } = await loadServed(src, o, metrics);
      if (models.has(served.name)) {
        await served.pool.close();
        throw new Error(`two models are named '${served.name}': name them with name=<path>`);
      }
      models.set(served.name, served);
      if (!page && served.image && served.source.toLowerCase().endsWith('.onnx')) {
        try {
          page = { site: createPageSite(served.source, bytes.bytes, served.info), model: served.name };
        } catch {
          page = null; // the page runs only some image models; the API serves them all
        }
      }
    }
  } catch (e) {
    await Promise.all([...models.values()].map((m) => m.pool.close()));
    throw e;
  }

  const authorized = bearerCheck(apiKey);
  let draining = false;
  let active = 0;
  let idle: (() => void) | null = null;
  let port = 0;

  const unknown = (name: string): Reply => error(404, `unknown model '${name.slice(0, 64)}': this server has ${[...models.keys()].join(', ')}`);

  const infer = async (m: Served, req: http.IncomingMessage, signal: AbortSignal): Promise<Reply> => {
    const body = await readBody(req, o.maxBodyBytes);
    if (!Buffer.isBuffer(body)) return body;
    let parsed: unknown;
    try {
      parsed = parseJson(body.toString('utf8'), MAX_JSON_DEPTH);
    } catch (e) {
      return error(400, `malformed JSON: ${(e as Error).message.slice(0, 200)}`);
    }
    const r = parseInferRequest(parsed, m.signature);
    const out = await m.batcher.submit(r.data, r.n, signal);
    return json(200, inferResponse(m.signature, r, out.data));
  };

  const classify = async (m: Served, req: http.IncomingMessage, query: URLSearchParams, signal: AbortSignal): Promise<Reply> => {
    if (!m.image) return error(400, `model ${m.name} does not take images (its metadata has no image preprocessing): send tensors to /v2/models/${m.name}/infer`);
    const kText = query.get('k') ?? '5';
    const k = Number(kText);
    if (!/^\d{1,6}$/.test(kText) || k < 1) return error(400, `k must be a positive integer, got '${kText.slice(0, 20)}'`);
    const body = await readBody(req, o.maxBodyBytes);
    if (!Buffer.isBuffer(body)) return body;
    if (body.length === 0) return error(400, 'the request body is empty: send the image file (JPEG, PNG or WebP) as the body');
    let pixels: Uint8Array;
    try {
      pixels = await decodeImageForModel(body, m.info, 'request body', o.maxImagePixels);
    } catch (e) {
      return error(400, (e as Error).message.slice(0, 400));
    }
    const { mean, std } = m.image;
    const plane = pixels.length / mean.length;
    const x = new Float32Array(pixels.length);
    // as the predictor's preprocessing: /255, - mean, / std, in float32
    for (let c = 0; c < mean.length; c++) {
      for (let i = c * plane; i < (c + 1) * plane; i++) x[i] = (Math.fround(pixels[i] / 255) - mean[c]) / std[c];
    }
    const out = await m.batcher.submit(x, 1, signal);
    const [top] = topK(out.data, out.dims, k, m.info.classNames);
    return json(200, { model_name: m.name, predictions: top.map((p) => ({ index: p.index, label: p.label, probability: p.probability })) });
  };

  const busy = (m: Served): Reply => error(503, `model ${m.name} is busy: ${m.admitted} requests in progress, the limit is ${m.admitLimit}; retry later`, { 'Retry-After': '1' });

  /** Takes an inference request in, or refuses it at once (503) when the model holds as many as it may. */
  const admit = (m: Served, res: http.ServerResponse): Reply | null => {
    if (draining) return error(503, 'the server is shutting down', { Connection: 'close' });
    if (m.admitted >= m.admitLimit) return busy(m);
    m.admitted++;
    res.once('close', () => { m.admitted--; });
    return null;
  };

  /** Routes a request; `model`/`endpoint` are filled in for the metrics. */
  const route = async (req: http.IncomingMessage, res: http.ServerResponse, labels: { model: string; endpoint: string }, signal: AbortSignal): Promise<Reply | null> => {
    const method = req.method ?? 'GET';
    const [rawPath, rawQuery = ''] = (req.url ?? '').split('?', 2);
    if (!hostAllowed(host, port, req.headers.host)) return error(421, 'unknown host: use a loopback address (this server listens on loopback only)');
    if (suspiciousPath(rawPath)) return error(400, 'bad path');
    const allow = (methods: string, endpoint: string): Reply | null => {
      labels.endpoint = endpoint;
      return methods.split(', ').includes(method) ? null : error(405, `${endpoint} takes ${methods}, not ${method.slice(0, 16)}`, { Allow: methods });
    };
    if (rawPath === '/v2/health/live') return allow('GET, HEAD', 'health') ?? json(200, { live: true });
    if (rawPath === '/v2/health/ready') return allow('GET, HEAD', 'health') ?? json(draining ? 503 : 200, { ready: !draining });
    if (!authorized(req.headers.authorization)) {
      labels.endpoint = 'auth';
      return error(401, 'missing or wrong API key: send it as Authorization: Bearer <key>', { 'WWW-Authenticate': 'Bearer' });
    }
    if (rawPath === '/v2') return allow('GET, HEAD', 'server') ?? json(200, { name: 'convkit', version: packageVersion(), extensions: ['classification'] });
    if (rawPath === '/metrics') {
      return allow('GET, HEAD', 'metrics') ?? { status: 200, body: await metrics.registry.metrics(), headers: { 'Content-Type': metrics.registry.contentType } };
    }
    const v2 = /^\/v2\/models\/([^/]+)(\/ready|\/infer|\/versions\/[^/]*(?:\/ready|\/infer)?)?$/.exec(rawPath);
    if (v2) {
      const m = models.get(v2[1]);
      if (!m) return unknown(v2[1]);
      labels.model = m.name;
      const tail = v2[2] ?? '';
      if (tail.startsWith('/versions/')) return error(404, `model ${m.name} has no versions: use /v2/models/${m.name}${tail.replace(/^\/versions\/[^/]*/, '')}`);
      if (tail === '/ready') return allow('GET, HEAD', 'model_ready') ?? json(draining ? 503 : 200, { name: m.name, ready: !draining });
      if (tail === '') return allow('GET, HEAD', 'model_metadata') ?? json(200, modelMetadata(m.signature, { source_file: m.source.split(/[\\/]/).pop() ?? '' }));
      const refused = allow('POST', 'infer') ?? admit(m, res);
      if (refused) return refused;
      return infer(m, req, signal);
    }
    const v1 = /^\/v1\/models\/([^/:]+):classify$/.exec(rawPath);
    if (v1) {
      const m = models.get(v1[1]);
      if (!m) return unknown(v1[1]);
      labels.model = m.name;
      const refused = allow('POST', 'classify') ?? admit(m, res);
      if (refused) return refused;
      return classify(m, req, new URLSearchParams(rawQuery), signal);
    }
    if (page?.site.has(rawPath)) {
      const refused = allow('GET, HEAD', 'page');
      if (refused) return refused;
      page.site.respond(req, res, rawPath);
      return null;
    }
    labels.endpoint = 'unknown';
    return error(404, `no such endpoint: ${rawPath.slice(0, 100)}`);
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    active++;
    const labels = { model: '', endpoint: 'unknown' };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort('timeout'), o.timeoutMs);
    res.on('close', () => {
      clearTimeout(timer);
      // a client that went away: its request leaves the queue instead of taking a batch's place
      if (!res.writableFinished) abort.abort('gone');
      const code = String(res.statusCode);
      metrics.requests.inc({ model: labels.model, endpoint: labels.endpoint, code });
      if (res.statusCode >= 400) metrics.errors.inc({ model: labels.model, code });
      if (labels.endpoint === 'infer' || labels.endpoint === 'classify') metrics.latency.observe(labels, (performance.now() - t0) / 1000);
      if (--active === 0 && idle) idle();
    });
    // the answer of a request whose time ran out, even while its batch still runs
    abort.signal.addEventListener('abort', () => {
      if (abort.signal.reason === 'timeout') send(res, error(504, `no answer within the request timeout of ${o.timeoutMs} ms`));
    });
    route(req, res, labels, abort.signal).then(
      (r) => {
        if (r) send(res, r);
        // refused before its body was read: the connection closes after the answer (its rest is not read)
        if (r && r.headers?.Connection === 'close') res.on('finish', () => req.destroy());
      },
      (e: unknown) => {
        if (e instanceof ProtocolError) return send(res, error(e.status, e.message));
        if (e instanceof BatchError) {
          if (e.code === 'queue-full') return send(res, error(503, `model ${labels.model} is busy: ${e.message}; retry later`, { 'Retry-After': '1' }));
          // (the admission limit above usually refuses first, before the body is read)
          if (e.code === 'closed') return send(res, error(503, e.message));
          return; // timeout: answered above
        }
        if (e instanceof RangeError) return send(res, error(400, e.message));
        send(res, error(500, `internal error: ${(e as Error).message?.slice(0, 300)}`));
      },
    );
  });
  server.requestTimeout = o.timeoutMs + 5000;
  server.headersTimeout = Math.min(60_000, o.timeoutMs + 5000);

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'EADDRINUSE' ? `port ${o.port} on ${host} is in use: choose another with --port, or 0 for a free one` : `cannot listen on ${host}:${o.port}: ${e.message}`));
    });
    server.listen(o.port, host, () => resolve());
  }).catch(async (e: unknown) => {
    await Promise.all([...models.values()].map((m) => m.pool.close()));
    throw e;
  });
  port = (server.address() as net.AddressInfo).port;
  const urlHost = net.isIPv6(host) ? `[${host}]` : host;

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    draining = true;
    // no new connections; idle keep-alive ones go now, busy ones when their answer is sent
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // requests already in (their body still arriving included) are answered; new ones get 503
    for (const m of models.values()) m.batcher.flush();
    if (active > 0) await new Promise<void>((resolve) => { idle = resolve; });
    await Promise.all([...models.values()].map((m) => m.batcher.drain()));
    server.closeAllConnections();
    await closed;
    await Promise.all([...models.values()].map((m) => m.pool.close()));
  };

  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    metrics,
    pageModel: page?.model ?? null,
    models: [...models.values()].map((m) => ({ name: m.name, source: m.source, info: m.info, signature: m.signature })),
    close: () => (closing ??= close()),
  };
}
