// convkit predict <model> <image | folder | glob ...>: the top-k classes of each image, as a
// table or JSON lines, the files streamed through in batches.
import { flag, intOpt, parse, shapeOpt, str, UsageError } from './args.js';
import { IMPORT_HELP, fetchPretrainedWeights, importUserModules } from './common.js';
import { MAX_BATCH, MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';

export const HELP = `usage: convkit predict <model> <image | folder | glob ...> [options]

Prints the most probable classes of each image. The model is an exported .onnx file (run by
ONNX Runtime) or a convkit checkpoint: a training checkpoint, a model.safetensors or a run
folder (run by libtorch, or by ONNX Runtime on the model exported in memory: by default a short
timed probe picks the faster on this machine). Images are decoded with sharp, resized,
centre-cropped and normalised as the model's metadata says. Folders are walked for .jpg .jpeg
.png .webp files; a glob ('photos/**/*.jpg', quoted) matches image files. A file that cannot be
read or decoded is reported on stderr and skipped. Exit status: 0 when at least one image was
predicted, 1 when none could be, 2 for bad usage.

options:
  --top <k>             classes per image (default 5)
  --batch <n>           images per batch (default 32)
  --json                one JSON line per image: {"file", "top": [{"label", "index", "probability"}]}
  --engine <e>          auto (default), onnxruntime or libtorch (checkpoints)
  --precision <p>       libtorch: auto (default), fp32 or bf16 (autocast, channels-last)
  --threads <n>         ONNX Runtime's threads (default: its own choice)
  --model <name>        the registered model the weights belong to (files convkit did not write)
  --num-classes <n>     classifier outputs (files convkit did not write)
  --image-size <h,w>    checkpoints: the input's height and width (default: the training data's)
  --ema                 a training checkpoint's EMA weights
  --pretrained          <model> is a registered name: torchvision's ImageNet weights (downloaded
                        once into the cache, as convkit weights --fetch does)
  --quiet               no engine report on stderr
${IMPORT_HELP}
  -h, --help            this help`;

const C = 'predict';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    top: { type: 'string' }, batch: { type: 'string' }, json: { type: 'boolean' }, engine: { type: 'string' }, precision: { type: 'string' },
    threads: { type: 'string' }, model: { type: 'string' }, 'num-classes': { type: 'string' }, 'image-size': { type: 'string' }, ema: { type: 'boolean' },
    pretrained: { type: 'boolean' }, quiet: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 2 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const [modelFile, ...inputs] = p.positionals;
  const top = intOpt(p, 'top', C, 1, MAX_CLASSES) ?? 5;
  const batch = intOpt(p, 'batch', C, 1, MAX_BATCH) ?? 32;
  const engine = str(p, 'engine') ?? 'auto';
  if (!['auto', 'onnxruntime', 'libtorch'].includes(engine)) throw new UsageError(`--engine must be auto, onnxruntime or libtorch, got '${engine.slice(0, 40)}'`, C);
  const precision = str(p, 'precision') ?? 'auto';
  if (!['auto', 'fp32', 'bf16'].includes(precision)) throw new UsageError(`--precision must be auto, fp32 or bf16, got '${precision.slice(0, 40)}'`, C);
  if (engine === 'onnxruntime' && precision === 'bf16') throw new UsageError('--precision bf16 is libtorch\'s: ONNX Runtime runs the fp32 graph', C);
  const threads = intOpt(p, 'threads', C, 1, 1024);
  const hw = shapeOpt(p, 'image-size', C, [2], MAX_IMAGE_SIDE);
  const json = flag(p, 'json');
  await import('../models/index.js');
  await importUserModules(p, C);
  const { loadPredictor, predictFiles, imagePaths } = await import('../deploy/index.js');
  if (flag(p, 'pretrained')) await fetchPretrainedWeights(modelFile, C);
  const predictor = await loadPredictor(modelFile, {
    engine: engine as 'auto', precision: precision as 'auto', threads, model: str(p, 'model'), numClasses: intOpt(p, 'num-classes', C, 1, MAX_CLASSES),
    imageSize: hw && [hw[0], hw[1]], ema: flag(p, 'ema'), pretrained: flag(p, 'pretrained'),
  });
  let done = 0;
  let failed = 0;
  try {
    if (!flag(p, 'quiet')) console.error(`convkit predict: ${describeChoice(predictor.choice)}`);
    const paths = imagePaths(inputs, (arg, message) => { failed++; console.error(`convkit predict: ${arg}: ${message}`); });
    const onError = (file: string, e: Error): void => {
      failed++;
      // the decoder's errors name the file already
      console.error(`convkit predict: ${e.message.includes(file) ? e.message : `${file}: ${e.message}`}`);
    };
    for await (const rows of predictFiles(predictor, paths, { batch, top, onError })) {
      done += rows.length;
      const lines = json
        ? rows.map((r) => JSON.stringify({ file: r.path, top: r.top.map((t) => ({ label: t.label, index: t.index, probability: Number(t.probability.toFixed(6)) })) }))
        : table(rows, top, done === rows.length);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  } finally {
    await predictor.dispose();
  }
  if (!flag(p, 'quiet') && failed > 0) console.error(`convkit predict: ${done} images predicted, ${failed} skipped`);
  if (done === 0) {
    console.error('convkit predict: error: no image could be predicted');
    return 1;
  }
  return 0;
}

function describeChoice(c: import('../deploy/index.js').EngineChoice): string {
  const how = c.engine === 'libtorch' ? `libtorch ${c.precision?.bf16 ? 'bf16 autocast' : 'fp32'}${c.precision?.channelsLast ? ', channels-last' : ''}` : 'ONNX Runtime';
  const why = c.reason === 'probe'
    ? `fastest in a timed probe (${Object.entries(c.timings ?? {}).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ')} per batch)`
    : c.reason === 'onnx-file' ? 'an ONNX file' : c.reason === 'asked' ? 'as asked' : 'the only engine that runs it';
  return `engine: ${how} (${why})${c.note ? `; ${c.note}` : ''}`;
}

function table(rows: { path: string; top: { label: string; probability: number }[] }[], k: number, header: boolean): string[] {
  const width = Math.max(24, ...rows.map((r) => r.path.length));
  const cell = (label: string, prob: number): string => `${label} ${(100 * prob).toFixed(2)}%`.padEnd(24);
  const out = rows.map((r) => `${r.path.padEnd(width)}  ${r.top.map((t) => cell(t.label, t.probability)).join(' ').trimEnd()}`);
  if (header) {
    out.unshift(`${'file'.padEnd(width)}  ${Array.from({ length: k }, (_, i) => `top-${i + 1}`.padEnd(24)).join(' ').trimEnd()}`);
  }
  return out;
}
