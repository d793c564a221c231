// convkit serve <model ...>: the models behind the Open Inference Protocol (KServe v2) over HTTP,
// with dynamic batching, until SIGTERM or SIGINT (then a graceful stop, exit 0).
import * as fs from 'node:fs';
import { flag, intOpt, parse, str, UsageError } from './args.js';
import { untilStopSignal } from './common.js';
import { isLoopback } from '../web/hosts.js';

export const HELP = `usage: convkit serve <model> [more models] [options]

Serves classifiers over HTTP with the Open Inference Protocol (KServe v2), so its clients work
unchanged. A model is an exported .onnx file, a convkit checkpoint (training checkpoint,
model.safetensors or run folder: exported in memory), or a registered name with --pretrained
(torchvision's ImageNet weights). Each runs on ONNX Runtime in worker threads; its URL name is
the file's stem (a run folder's name for model/best/last files), or give it as name=<model>.

endpoints:
  GET  /v2/health/live, /v2/health/ready    liveness, readiness (no API key needed)
  GET  /v2                                  server metadata
  GET  /v2/models/<name>                    inputs, outputs, class names (parameters)
  GET  /v2/models/<name>/ready
  POST /v2/models/<name>/infer              FP32 tensors in JSON ("data" flat or nested);
                                            outputs[0].parameters.classification: k -> top-k
  POST /v1/models/<name>:classify?k=5       an image body (JPEG, PNG, WebP) -> the top-k classes
  GET  /metrics                             Prometheus metrics
  GET  /                                    the browser page, for the first image .onnx model

options:
  --pretrained           model names are registered models with torchvision's ImageNet weights
  --port <n>             the port (default 8080; 0: a free one)
  --host <address>       the address to listen on (default 127.0.0.1); any other needs --api-key
                         or --insecure
  --api-key <key>        every request but the health checks must carry 'Authorization: Bearer
                         <key>' (default: $CONVKIT_API_KEY; at least 8 characters)
  --insecure             serve a non-loopback address without an API key
  --max-batch <n>        samples per batch (default 16)
  --max-delay-ms <ms>    how long a request waits for others to join its batch (default 5)
  --workers <n>          worker threads per model, each with its own session (default 1)
  --threads <n>          ONNX Runtime threads per worker (default: the cores / workers)
  --max-queue <n>        requests waiting per model before new ones get 503 (default 8 x max-batch)
  --timeout-ms <ms>      a request not answered in this time gets 504 (default 30000)
  --max-body-bytes <n>   the largest request body, else 413 (default 67108864)
  -h, --help             this help`;

const C = 'serve';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    pretrained: { type: 'boolean' }, port: { type: 'string' }, host: { type: 'string' }, 'api-key': { type: 'string' }, insecure: { type: 'boolean' },
    'max-batch': { type: 'string' }, 'max-delay-ms': { type: 'string' }, workers: { type: 'string' }, threads: { type: 'string' },
    'max-queue': { type: 'string' }, 'timeout-ms': { type: 'string' }, 'max-body-bytes': { type: 'string' },
  }, { minPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const host = str(p, 'host') ?? '127.0.0.1';
  const apiKey = str(p, 'api-key') ?? (process.env.CONVKIT_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.length < 8) throw new UsageError('--api-key must have at least 8 characters', C);
  if (!isLoopback(host) && apiKey === undefined && !flag(p, 'insecure')) {
    throw new UsageError(`--host ${host} is not a loopback address: other machines could use the models; give --api-key (or $CONVKIT_API_KEY), or --insecure to serve them without one`, C);
  }
  const pretrained = flag(p, 'pretrained');
  const models = p.positionals.map((arg) => {
    // name=<model>, unless the whole argument is a path that exists
    const m = /^([^=/\\]+)=(.+)$/.exec(arg);
    const [name, source] = m && !fs.existsSync(arg) ? [m[1], m[2]] : [undefined, arg];
    if (!pretrained && !fs.existsSync(source)) throw new UsageError(`${source}: no such file or folder (a registered model name needs --pretrained)`, C);
    return { name, source, pretrained: pretrained && !fs.existsSync(source) };
  });
  const o = {
    models, host, apiKey: apiKey ?? null, insecure: flag(p, 'insecure'),
    port: intOpt(p, 'port', C, 0, 65535) ?? 8080,
    maxBatch: intOpt(p, 'max-batch', C, 1, 4096),
    maxDelayMs: intOpt(p, 'max-delay-ms', C, 0, 60_000),
    workers: intOpt(p, 'workers', C, 1, 256),
    threads: intOpt(p, 'threads', C, 1, 1024),
    maxQueue: intOpt(p, 'max-queue', C, 1, 1 << 20),
    timeoutMs: intOpt(p, 'timeout-ms', C, 1, 24 * 3600_000),
    maxBodyBytes: intOpt(p, 'max-body-bytes', C, 1, 2 ** 31 - 1),
  };
  await import('../models/index.js');
  const { startServer } = await import('../serve/index.js');
  // a signal while the models load stops before serving
  let stopEarly: NodeJS.Signals | null = null;
  const early = (s: NodeJS.Signals): void => { stopEarly = s; };
  process.once('SIGTERM', early);
  process.once('SIGINT', early);
  const server = await startServer(o);
  process.off('SIGTERM', early);
  process.off('SIGINT', early);
  for (const m of server.models) {
    const sample = m.signature.sampleShape.join('x');
    console.log(`convkit serve: ${m.name} <- ${m.source} (input ${sample}, ${m.signature.classes} classes${m.signature.classNames ? '' : ', no class names'})`);
  }
  console.log(`convkit serve: listening on ${server.url} (max batch ${o.maxBatch ?? 16}, max delay ${o.maxDelayMs ?? 5} ms${server.pageModel ? `; page at / runs ${server.pageModel}` : ''})`);
  const signal = stopEarly ?? await untilStopSignal();
  console.log(`convkit serve: ${signal}: finishing the requests in progress`);
  // a second signal while draining stops at once
  const now = (): void => process.exit(1);
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  await server.close();
  console.log('convkit serve: stopped');
  return 0;
}
