// The server behind `convkit web`: the page in web/, one exported model, its metadata as JSON and
// onnxruntime-web's files, on loopback by default. Only a fixed list of paths is served (no file
// system look-up from a request), with COOP/COEP so that the page is cross-origin isolated and
// onnxruntime-web may use threads.
import * as fs from 'node:fs';
import { isOnnxFile } from '../io/files.js';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { predictorInfo, type PredictorInfo } from '../deploy/predictor.js';
import { isLoopback } from './hosts.js';

export interface WebServerOptions {
  /** the exported .onnx file */
  model: string;
  /** default 0: a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** serve on an address other machines can reach (any non-loopback host); default false */
  allowRemote?: boolean;
}

export interface WebServer {
  /** the page's address, e.g. http://127.0.0.1:41234/ */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly info: PredictorInfo;
  /** stops listening and ends open connections */
  close(): Promise<void>;
}

/** What the page reads from model.json (onnxruntime-web does not expose metadata_props). */
export interface WebModelJson {
  /** the model file's base name */
  file: string;
  bytes: number;
  info: PredictorInfo;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.onnx': 'application/octet-stream',
};

/** The page's own files, in web/. */
export const PAGE_FILES = ['index.html', 'app.js', 'preprocess.js', 'style.css'] as const;
/** onnxruntime-web's WebAssembly build (SIMD, threads): its module, its runtime and the binary. */
export const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] as const;

// what the page needs and nothing else: its own scripts, WebAssembly compilation, the
// pthread workers' module, images it decodes from blobs, the bars' widths (set via CSSOM)
const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; " +
  "img-src 'self' blob: data:; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': CSP,
  'Cache-Control': 'no-cache',
};

type Body = { kind: 'bytes'; data: Uint8Array } | { kind: 'file'; file: string; size: number };
interface Route { type: string; body: Body }

function packageRoot(): string {
  return path.dirname(createRequire(import.meta.url).resolve('convkit/package.json'));
}

function ortDist(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('onnxruntime-web');
  } catch {
    throw new Error('onnxruntime-web is not installed: `convkit web` serves its WebAssembly files (npm install onnxruntime-web)');
  }
  return path.dirname(entry);
}

function fileRoute(file: string): Route {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    throw new Error(`${file}: missing (the web page's files ship with convkit and onnxruntime-web; reinstall them)`);
  }
  return { type: TYPES[path.extname(file)], body: { kind: 'file', file, size } };
}

// A request path is looked up as is in the route table; anything that tries to climb or hide a
// separator is refused before that, so that a log says what was tried.
const SUSPICIOUS = /(^|\/)\.\.?(\/|$)|\\|%2e|%2f|%5c|%00/i;

/** The page's fixed table of paths for one model: what `convkit web` serves, and `convkit serve` at `/`. */
export interface PageSite {
  readonly json: WebModelJson;
  /** whether `urlPath` (the path without query) is one of the page's */
  has(urlPath: string): boolean;
  /** answers a GET or HEAD of a path `has` accepted, with the isolation headers */
  respond(req: http.IncomingMessage, res: http.ServerResponse, urlPath: string): void;
}

/** True for a request path that tries to climb or hide a separator (refused before any look-up). */
export const suspiciousPath = (urlPath: string): boolean => !urlPath.startsWith('/') || SUSPICIOUS.test(urlPath);

/**
 * The page's routes for an exported model already read (`file` names it in errors and in
 * model.json). Throws when the model is not a 1- or 3-channel image classifier with its preprocessing.
 */
export function createPageSite(file: string, bytes: Uint8Array, info: PredictorInfo): PageSite {
  checkImageModel(file, info);
  const json: WebModelJson = { file: path.basename(file), bytes: bytes.byteLength, info };
  const routes = new Map<string, Route>();
  const web = path.join(packageRoot(), 'web');
  for (const f of PAGE_FILES) routes.set(`/${f}`, fileRoute(path.join(web, f)));
  routes.set('/', routes.get('/index.html')!);
  const ort = ortDist();
  for (const f of ORT_FILES) routes.set(`/ort/${f}`, fileRoute(path.join(ort, f)));
  routes.set('/model.onnx', { type: TYPES['.onnx'], body: { kind: 'bytes', data: bytes } });
  routes.set('/model.json', { type: TYPES['.json'], body: { kind: 'bytes', data: Buffer.from(JSON.stringify(json)) } });
  return {
    json,
    has: (p) => routes.has(p),
    respond(req, res, p) {
      const { body, type } = routes.get(p)!;
      const length = body.kind === 'bytes' ? body.data.byteLength : body.size;
      res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': length });
      if (req.method === 'HEAD') return void res.end();
      if (body.kind === 'bytes') return void res.end(body.data);
      const stream = fs.createReadStream(body.file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    },
  };
}

/**
 * Whether a request's Host header may be answered by a server listening on `host`:`port`. Behind
 * loopback, a page from elsewhere could still reach the server through a DNS name rebound to
 * 127.0.0.1; it would send that name as Host, so only loopback names are answered there.
 */
export function hostAllowed(host: string, port: number, header: string | undefined): boolean {
  if (!isLoopback(host)) return true;
  if (!header) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(header);
  return m !== null && isLoopback(m[1]) && (m[2] === undefined || Number(m[2]) === port);
}

function send(res: http.ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(message), ...extra });
  res.end(message);
}

/** Starts serving `model` and the page; resolves once listening. */
export async function startWebServer(o: WebServerOptions): Promise<WebServer> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  if (!loopback && !o.allowRemote) {
    throw new Error(`host ${host} is not a loopback address: the page and the model would be reachable from other machines (allow it explicitly to serve them anyway)`);
  }
  if (!isOnnxFile(o.model)) throw new Error(`${o.model}: expected an .onnx file (export one with \`convkit export\`)`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(fs.readFileSync(o.model));
  } catch (e) {
    throw new Error(`${o.model}: cannot read it: ${(e as Error).message}`);
  }
  const info = predictorInfo(o.model, bytes);
  const site = createPageSite(o.model, bytes, info);

  let port = 0;
  const server = http.createServer((req, res) => {
    if (!hostAllowed(host, port, req.headers.host)) return send(res, 421, 'unknown host: use the address convkit web printed\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET and HEAD\n', { Allow: 'GET, HEAD' });
    const raw = (req.url ?? '').split(/[?#]/, 1)[0];
    if (suspiciousPath(raw)) return send(res, 400, 'bad path\n');
    if (!site.has(raw)) return send(res, 404, 'not found\n');
    site.respond(req, res, raw);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'EADDRINUSE' ? `port ${o.port} on ${host} is in use: choose another with --port, or 0 for a free one` : `cannot listen on ${host}:${o.port ?? 0}: ${e.message}`));
    });
    server.listen(o.port ?? 0, host, () => resolve());
  });
  port = (server.address() as net.AddressInfo).port;
  const urlHost = net.isIPv6(host) ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    info,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** The page runs image classifiers: [channels, height, width] with 1 or 3 channels and their preprocessing. */
function checkImageModel(file: string, info: PredictorInfo): void {
  const size = info.inputSize;
  if (!size || size.length !== 3 || (size[0] !== 1 && size[0] !== 3)) {
    throw new Error(`${file}: the page runs image models with a 1- or 3-channel input [channels, height, width], this one takes ${size ? `[${size.join(', ')}]` : 'an input the metadata does not describe'}`);
  }
  if (!info.mean || !info.std || !info.crop) throw new Error(`${file}: no preprocessing metadata (mean, std, crop): export it with \`convkit export\``);
  if (info.mean.length !== size[0] || info.std.length !== size[0]) {
    throw new Error(`${file}: mean and std need ${size[0]} values (one per channel), got ${info.mean.length} and ${info.std.length}`);
  }
  if (info.crop[0] !== size[1] || info.crop[1] !== size[2]) throw new Error(`${file}: the crop ${info.crop.join('x')} differs from the input size ${size[1]}x${size[2]}`);
}
