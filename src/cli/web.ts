// convkit web <model.onnx>: the browser page running an exported model, served on loopback.
import { flag, intOpt, parse, str, UsageError } from './args.js';
import { untilStopSignal } from './common.js';
import { isOnnxFile } from '../io/files.js';
import { isLoopback } from '../web/hosts.js';

export const HELP = `usage: convkit web <model.onnx> [options]

Serves a page that runs the exported model in the browser with onnxruntime-web (WebAssembly,
SIMD, threads): drop, paste or choose an image (or draw one for a gray 28x28 model) and see
the top-5 classes with the time taken. The preprocessing and class names come from the
model's metadata (as \`convkit export\` writes it). Prints the page's address; Ctrl-C stops.

options:
  --port <n>        the port (default 0: a free one)
  --host <address>  the address to listen on (default 127.0.0.1); one other machines can
                    reach needs --allow-remote
  --allow-remote    serve on a non-loopback address (anyone who reaches it gets the model)
  -h, --help        this help`;

const C = 'web';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, { port: { type: 'string' }, host: { type: 'string' }, 'allow-remote': { type: 'boolean' } }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const port = intOpt(p, 'port', C, 0, 65535) ?? 0;
  const host = str(p, 'host') ?? '127.0.0.1';
  if (!isLoopback(host) && !flag(p, 'allow-remote')) {
    throw new UsageError(`--host ${host} is not a loopback address: the page and the model would be reachable from other machines; add --allow-remote to serve them anyway`, C);
  }
  const [model] = p.positionals;
  if (!isOnnxFile(model)) throw new UsageError(`expected an .onnx file, got '${model}' (export a checkpoint with 'convkit export <checkpoint> -o model.onnx')`, C);
  // libtorch loads (through the metadata reader's module) only for valid arguments
  const { startWebServer } = await import('../web/server.js');
  const server = await startWebServer({ model, port, host, allowRemote: flag(p, 'allow-remote') });
  const { info } = server;
  const what = [info.modelName, info.inputSize && `input [${info.inputSize.join(', ')}]`, info.classNames && `${info.classNames.length} classes`].filter(Boolean).join(', ');
  console.log(`convkit web: serving ${model}${what ? ` (${what})` : ''}`);
  console.log(`open ${server.url}  (Ctrl-C to stop)`);
  const signal = await untilStopSignal();
  await server.close();
  console.log(`convkit web: stopped (${signal})`);
  return 0;
}
