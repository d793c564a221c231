// convkit export <checkpoint | run folder | model name> -o model.onnx: the model as an ONNX file
// with its preprocessing in the metadata.
import { flag, intOpt, parse, shapeOpt, str, UsageError } from './args.js';
import { IMPORT_HELP, fetchPretrainedWeights, importUserModules } from './common.js';
import { MAX_BATCH, MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';

export const HELP = `usage: convkit export <checkpoint | run folder | model name> -o <model.onnx> [options]

Exports a model to ONNX: a training checkpoint (last/best.safetensors), a model.safetensors,
a run folder (its model.safetensors, else best, else last), other safetensors / .pth weights
with --model, or a registered model name (fresh random weights). The graph is the model's
eval-mode forward, traced; BatchNorm is folded into the convolutions. Class names, input
size, mean/std, resize and crop go into the file's metadata.

options:
  -o, --output <file>   the ONNX file to write (required; written atomically)
  --opset <n>           ONNX opset: 17 (default) or 18
  --batch <dynamic|N>   a dynamic batch axis (default) or a fixed batch size
  --image-size <h,w>    the input's height and width (default: the training data's,
                        else the model's native size)
  --model <name>        the registered model the weights belong to (files convkit did not write)
  --num-classes <n>     classifier outputs (files convkit did not write, or a model name)
  --ema                 export a training checkpoint's EMA weights
  --pretrained          a registered model name with torchvision's ImageNet weights (downloaded
                        once into the cache) and the ImageNet class names
  --json                print what was written as JSON
${IMPORT_HELP}
  -h, --help            this help`;

const C = 'export';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    output: { type: 'string', short: 'o' }, opset: { type: 'string' }, batch: { type: 'string' }, 'image-size': { type: 'string' },
    model: { type: 'string' }, 'num-classes': { type: 'string' }, ema: { type: 'boolean' }, pretrained: { type: 'boolean' }, json: { type: 'boolean' },
    import: { type: 'string', multiple: true },
  }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const out = str(p, 'output');
  if (!out) throw new UsageError('give the file to write with -o <model.onnx>', C);
  const opset = intOpt(p, 'opset', C, 1, 1000) ?? 17;
  if (opset !== 17 && opset !== 18) throw new UsageError(`--opset must be 17 or 18, got ${opset}`, C);
  const batchArg = str(p, 'batch') ?? 'dynamic';
  let batch: 'dynamic' | number = 'dynamic';
  if (batchArg !== 'dynamic') {
    if (!/^\d+$/.test(batchArg)) throw new UsageError(`--batch must be 'dynamic' or a batch size, got '${batchArg.slice(0, 40)}'`, C);
    batch = intOpt(p, 'batch', C, 1, MAX_BATCH)!;
  }
  const hw = shapeOpt(p, 'image-size', C, [2], MAX_IMAGE_SIDE);
  const numClasses = intOpt(p, 'num-classes', C, 1, MAX_CLASSES);
  // libtorch and the zoo load only for valid arguments
  await import('../models/index.js');
  await importUserModules(p, C);
  const { loadExportSource } = await import('../export/source.js');
  if (flag(p, 'pretrained')) await fetchPretrainedWeights(p.positionals[0], C);
  const { exportOnnx } = await import('../export/export.js');
  const src = loadExportSource(p.positionals[0], { model: str(p, 'model'), numClasses, imageSize: hw && [hw[0], hw[1]], ema: flag(p, 'ema'), pretrained: flag(p, 'pretrained') });
  try {
    const t0 = performance.now();
    const r = exportOnnx(src.model, src.example, { opset, batch, metadata: src.metadata, file: out });
    const seconds = (performance.now() - t0) / 1000;
    const summary = {
      file: out, model: src.metadata.modelName, weights: src.weights, opset, batch, bytes: r.bytes.byteLength, nodes: r.graph.nodes.length, ops: r.ops,
      input: r.graph.inputs[0].shape, output: r.graph.outputs[0].shape, seconds: Number(seconds.toFixed(2)),
    };
    if (flag(p, 'json')) console.log(JSON.stringify(summary));
    else {
      if (!src.weights) console.error(`convkit export: no weights given: ${String(src.metadata.modelName)} has fresh random weights`);
      const ops = Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ');
      console.log(`wrote ${out}: ${String(src.metadata.modelName)}, ${r.graph.nodes.length} nodes (${ops}), input [${summary.input.join(', ')}], ` +
        `${(r.bytes.byteLength / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`);
    }
  } finally {
    src.model.dispose();
    src.example.dispose();
  }
  return 0;
}
