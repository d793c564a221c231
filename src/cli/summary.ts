// convkit summary <model> [--input C,H,W]: a layer-by-layer table of a registered model.
import { flag, intOpt, parse, shapeOpt, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';
import { isOnnxFile } from '../io/files.js';
import { MAX_BATCH, MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';

export const HELP = `usage: convkit summary <model> [options]
       convkit summary <model.onnx> [--json]

Prints every layer of a registered model: name, type, output shape, parameters and
multiply-adds for one forward pass, with totals. Of an ONNX file it prints which layers are
int8 and which stay float (as convkit quantize wrote them), the ops in the file and the kernels
ONNX Runtime runs (as convkit quantize --report).

options:
  --input C,H,W         input size (default: the model's native input size)
  --batch N             batch size of the pass (default 1)
  --num-classes N       classifier outputs (default: the model's default)
  --in-channels N       input channels (default: from --input, else the model's)
  --depth N             show layers nested at most N deep
  --json                print the summary as JSON
${IMPORT_HELP}
  -h, --help            this help`;

export async function run(args: string[]): Promise<number> {
  const p = parse('summary', args, {
    input: { type: 'string' }, batch: { type: 'string' }, 'num-classes': { type: 'string' }, 'in-channels': { type: 'string' },
    depth: { type: 'string' }, json: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  if (isOnnxFile(p.positionals[0])) return onnxSummary(p.positionals[0], flag(p, 'json'));
  const input = shapeOpt(p, 'input', 'summary', [3, 2]);
  const depth = intOpt(p, 'depth', 'summary', 1);
  const batch = intOpt(p, 'batch', 'summary', 1, MAX_BATCH) ?? 1;
  const numClasses = intOpt(p, 'num-classes', 'summary', 1, MAX_CLASSES);
  const channelsOpt = intOpt(p, 'in-channels', 'summary', 1, MAX_CHANNELS);
  if (input?.some((d, i) => d > (input.length === 3 && i === 0 ? MAX_CHANNELS : MAX_IMAGE_SIDE))) {
    throw new UsageError(`--input must have at most ${MAX_CHANNELS} channels and sides of at most ${MAX_IMAGE_SIDE}, got '${input.join(',')}'`, 'summary');
  }
  // libtorch and the zoo load only for valid arguments
  const { createModel, modelEntry } = await import('../models/index.js');
  const { summary, formatSummary } = await import('../analyze/summary.js');
  await importUserModules(p, 'summary');
  const name = p.positionals[0];
  let entry;
  try {
    entry = modelEntry(name);
  } catch (e) {
    throw new UsageError((e as Error).message, 'summary');
  }
  const cfg = entry.config.inputSize;
  const inChannels = channelsOpt ?? (input?.length === 3 ? input[0] : cfg[0]);
  const shape = input?.length === 3 ? input : input?.length === 2 ? [inChannels, ...input] : [inChannels, cfg[1], cfg[2]];
  const model = createModel(name, { inChannels, ...(numClasses ? { numClasses } : {}) });
  try {
    const report = summary(model, [batch, ...shape]);
    report.model = name;
    if (flag(p, 'json')) console.log(JSON.stringify(report, null, 2));
    else console.log(formatSummary(report, { maxDepth: depth }));
  } finally {
    model.dispose();
  }
  return 0;
}

async function onnxSummary(file: string, json: boolean): Promise<number> {
  const { quantizationReport } = await import('../compress/quantize.js');
  const { formatReport } = await import('./quantize.js');
  const r = await quantizationReport(file);
  console.log(json ? JSON.stringify(r) : formatReport(r));
  return 0;
}
