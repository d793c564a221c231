// Shared by the serve tests: small models exported to ONNX in a temporary folder, a raw HTTP
// client (status, headers and body as sent), metrics parsing, and a PNG whose header lies.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { manualSeed, randn } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, Conv2d, Flatten, Linear, ReLU, Sequential, type Module } from '../../src/nn/index.js';
import { exportOnnx } from '../../src/export/index.js';

type AnyModule = Module<never[], unknown>;

export const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-serve-'));

/** A 3-class classifier of 3x8x8 images, with preprocessing metadata (named 'tiny' by its file). */
export function tinyModel(name = 'tiny'): string {
  manualSeed(5);
  const model = new Sequential(new Conv2d(3, 4, 3), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3)).eval() as unknown as AnyModule;
  const file = path.join(dir, `${name}.onnx`);
  exportOnnx(model, randn([1, 3, 8, 8]), { file, metadata: { modelName: 'tiny', classNames: ['cat', 'dog', 'eel'], inputSize: [3, 8, 8], mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3], resize: 8, crop: [8, 8] } });
  model.dispose();
  return file;
}

export const SLOW_SIDE = 128;

/** A model slow enough (tens of ms a sample on 2 cores) to hold a batch while other requests come in. */
export function slowModel(name = 'slow'): string {
  manualSeed(6);
  const convs = Array.from({ length: 10 }, () => [new Conv2d(24, 24, 3, { padding: 1 }), new ReLU()]).flat();
  const model = new Sequential(new Conv2d(3, 24, 3, { padding: 1 }), ...convs, new AdaptiveAvgPool2d(1), new Flatten(), new Linear(24, 2)).eval() as unknown as AnyModule;
  const file = path.join(dir, `${name}.onnx`);
  exportOnnx(model, randn([1, 3, SLOW_SIDE, SLOW_SIDE]), { file, metadata: { classNames: ['a', 'b'], inputSize: [3, SLOW_SIDE, SLOW_SIDE], mean: [0, 0, 0], std: [1, 1, 1], crop: [SLOW_SIDE, SLOW_SIDE] } });
  model.dispose();
  return file;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** the body as JSON (throws when it is not) */
  json<T = Record<string, unknown>>(): T;
}

export interface RequestOptions {
  method?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

const agent = new http.Agent({ keepAlive: false });

/** One request with the path exactly as given. */
export function request(port: number, rawPath: string, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...o.headers };
    if (o.body !== undefined) headers['Content-Length'] = Buffer.byteLength(o.body);
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: o.method ?? (o.body !== undefined ? 'POST' : 'GET'), headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString()) as T });
      });
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

/** An infer request body for a [n, ...shape] FP32 tensor. */
export function inferBody(data: ArrayLike<number>, shape: number[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape, data: Array.from(data) }], ...extra });
}

/** The value of one sample line of Prometheus' text format, e.g. metric('convkit_batch_size_count{model="tiny"}'). */
export function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Deterministic inputs in [-1, 1]. */
export function wave(n: number, phase: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A valid small PNG's bytes with its IHDR rewritten to declare width x height (CRC fixed): a decompression bomb's header. */
export function lyingPng(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  // signature (8), IHDR length (4), 'IHDR' (4), width, height ...; CRC over type + 13 data bytes
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}
