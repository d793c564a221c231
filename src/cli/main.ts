// The convkit command: dispatches to one module per command. Exit codes: 0 done, 1 failed
// (the error's message, a stack trace only with CONVKIT_DEBUG=1), 2 bad usage, 130 interrupted.
import { UsageError } from './args.js';
import { packageVersion } from './common.js';

interface Command {
  summary: string;
  load: () => Promise<{ run: (args: string[]) => Promise<number>; HELP: string }>;
}

// Loaded on demand: `convkit inspect` need not load the model zoo.
const COMMANDS: Record<string, Command> = {
  train: { summary: 'train a model (default: airbench_m on Fashion-MNIST)', load: () => import('./train.js') },
  eval: { summary: 'evaluate a checkpoint on a dataset', load: () => import('./eval.js') },
  models: { summary: 'list the registered models with parameters and MACs', load: () => import('./models.js') },
  summary: { summary: 'layer-by-layer summary of a model', load: () => import('./summary.js') },
  inspect: { summary: 'list the tensors and metadata of a checkpoint', load: () => import('./inspect.js') },
  scale: { summary: 'build a compound-scaled EfficientNet (depth, width, resolution)', load: () => import('./scale.js') },
  'scale-search': { summary: 'grid-search the compound-scaling coefficients on a proxy schedule', load: () => import('./scale_search.js') },
  weights: { summary: 'list, locate and download the pretrained ImageNet weights', load: () => import('./weights.js') },
  explain: { summary: 'heat maps of what a classifier looks at (Grad-CAM, IG, occlusion)', load: () => import('./explain.js') },
  export: { summary: 'export a checkpoint or model to ONNX', load: () => import('./export.js') },
  quantize: { summary: 'quantize a checkpoint or ONNX model to int8 (QDQ ONNX)', load: () => import('./quantize.js') },
  prune: { summary: 'prune channels (smaller, faster) or weights (sparse) of a trained model', load: () => import('./prune.js') },
  predict: { summary: 'top-k classes of images (an .onnx file or a checkpoint)', load: () => import('./predict.js') },
  web: { summary: 'serve a page that runs an exported model in the browser', load: () => import('./web.js') },
  serve: { summary: 'an inference server (KServe v2 over HTTP) with dynamic batching', load: () => import('./serve.js') },
};

export const MAIN_HELP = `usage: convkit <command> [options]

commands:
${Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(12)} ${c.summary}`).join('\n')}

Run 'convkit <command> --help' for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(MAIN_HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(packageVersion());
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`convkit: unknown command '${name}'; commands are ${Object.keys(COMMANDS).join(', ')} (convkit --help)`);
    return 2;
  }
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (e) {
    return reportError(e, name);
  }
}

export function reportError(e: unknown, command: string): number {
  const debug = process.env.CONVKIT_DEBUG === '1';
  if (e instanceof UsageError) {
    console.error(`convkit ${command}: ${e.message}\nrun 'convkit ${command} --help' for usage`);
    if (debug) console.error(e.stack);
    return 2;
  }
  const msg = e instanceof Error ? e.message : String(e);
  console.error(`convkit ${command}: error: ${msg}`);
  if (debug && e instanceof Error) console.error(e.stack);
  return 1;
}

// Run when executed (bin/convkit.js imports this module), not when imported by the library's tests.
const invoked = process.argv[1] ?? '';
if (/(convkit(\.js)?|cli[\\/]main\.js)$/.test(invoked)) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => { process.exitCode = reportError(e, 'convkit'); },
  );
}
