// convkit eval <checkpoint> <dataset>: top-1, top-5, loss, the per-class report and the
// confusion matrix, as tables or JSON.
import * as fs from 'node:fs';
import { isOnnxFile } from '../io/files.js';
// libtorch and the model zoo are loaded once the arguments are known to be good
import { RecipeError, DATASETS } from '../train/recipe.js';
import { ProgressBar } from '../train/progress.js';
import { autoBoolOpt, flag, intOpt, parse, shapeOpt, str, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';
import { MAX_BATCH, MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';

export const HELP = `usage: convkit eval <checkpoint> <dataset> [options]

Evaluates a checkpoint: a training checkpoint (last/best.safetensors), a model.safetensors,
or other safetensors / .pth weights (then --model is required); or an exported .onnx file,
run by ONNX Runtime with the file's own normalisation (--model, --num-classes, --ema, --bf16,
--flip and --translate do not apply), so that a shipped model is checked on the same data
(and the same --limit subset) as the checkpoint it came from. dataset is one of
${DATASETS.join(', ')}.

options:
  --model <name>        the registered model the weights belong to
  --num-classes <n>     classifier outputs (files convkit did not write)
  --data-root <dir>     the dataset's folder
  --split <train|test>  which split (default test)
  --limit <n>           a seeded random subset of n images (those train --limit-test n
                        evaluates with seed 0)
  --batch-size <n>      default 500
  --image-size <h,w>    evaluate at this size (default: the size the run trained at;
                        image folders are decoded at it, other datasets resized)
  --ema                 evaluate a training checkpoint's EMA weights
  --bf16 <on|off>       bfloat16 autocast (default: as the run evaluated, so that the
                        figure is the one training printed; off for other files)
  --flip                test-time augmentation: average with the mirrored image
                        (what convkit train's final evaluation does by default)
  --translate <px>      test-time augmentation: also average views shifted by +-px
  --json                print the results as JSON
  --quiet               no progress bar
${IMPORT_HELP}
  -h, --help            this help`;

const C = 'eval';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    model: { type: 'string' }, 'num-classes': { type: 'string' }, 'data-root': { type: 'string' }, split: { type: 'string' },
    limit: { type: 'string' }, 'batch-size': { type: 'string' }, 'image-size': { type: 'string' }, ema: { type: 'boolean' },
    bf16: { type: 'string' }, flip: { type: 'boolean' }, translate: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 2, maxPositionals: 2 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const [file, dataset] = p.positionals;
  if (!fs.existsSync(file)) throw new Error(`checkpoint ${file}: no such file`);
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new UsageError(`unknown dataset '${dataset}': expected one of ${DATASETS.join(', ')}`, C);
  const split = str(p, 'split') ?? 'test';
  if (split !== 'train' && split !== 'test') throw new UsageError(`--split must be train or test, got '${split}'`, C);
  const bf16 = autoBoolOpt(p, 'bf16', C);
  const hw = shapeOpt(p, 'image-size', C, [2], MAX_IMAGE_SIDE);
  const imageSize: [number, number] | undefined = hw && [hw[0], hw[1]];
  await import('../models/index.js');
  await importUserModules(p, C);
  const { evaluateCheckpoint } = await import('../train/eval_checkpoint.js');
  const { formatClassReport, formatConfusion } = await import('../train/metrics.js');
  let bar: ProgressBar | null = null;
  const quiet = flag(p, 'quiet') || flag(p, 'json');
  const onnx = isOnnxFile(file);
  if (onnx) {
    const notForOnnx = ['model', 'num-classes', 'ema', 'bf16', 'flip', 'translate'].filter((k) => p.values[k] !== undefined);
    if (notForOnnx.length) throw new UsageError(`${notForOnnx.map((k) => `--${k}`).join(', ')}: not for an .onnx file (it carries its model, classes and preprocessing)`, C);
  }
  let ev;
  try {
    ev = onnx ? await (await import('../deploy/eval_onnx.js')).evaluateOnnx(file, dataset, {
      dataRoot: str(p, 'data-root'), split, limit: intOpt(p, 'limit', C, 1), batchSize: intOpt(p, 'batch-size', C, 1, MAX_BATCH), imageSize,
      onBatch: quiet ? undefined : (done, total) => { (bar ??= new ProgressBar({ total, label: 'eval' })).update(done); },
    }) : await evaluateCheckpoint(file, dataset, {
      model: str(p, 'model'), numClasses: intOpt(p, 'num-classes', C, 1, MAX_CLASSES), dataRoot: str(p, 'data-root'), split,
      limit: intOpt(p, 'limit', C, 1), batchSize: intOpt(p, 'batch-size', C, 1, MAX_BATCH), ema: flag(p, 'ema'), bf16: bf16 === 'auto' ? undefined : bf16, imageSize,
      flip: flag(p, 'flip'), translate: intOpt(p, 'translate', C, 0, MAX_IMAGE_SIDE),
      onBatch: quiet ? undefined : (done, total) => { (bar ??= new ProgressBar({ total, label: 'eval' })).update(done); },
    });
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message, C);
    throw e;
  } finally {
    (bar as ProgressBar | null)?.finish();
  }
  const r = ev.result;
  if (flag(p, 'json')) {
    console.log(JSON.stringify({
      checkpoint: ev.checkpoint, model: ev.model, dataset: ev.dataset, split: ev.split, weights: ev.weights, tta: ev.tta, count: r.count,
      top1: r.top1, top5: r.top5, loss: r.loss, classes: ev.classes, perClass: ev.report.classes,
      macro: ev.report.macro, weighted: ev.report.weighted, confusion: r.confusion.toJSON(),
    }, null, 2));
    return 0;
  }
  const tta = [ev.tta.flip ? 'flip' : '', ev.tta.translate > 0 ? `translate ${ev.tta.translate}px` : ''].filter(Boolean).join(' + ');
  console.log(`${ev.checkpoint} (${ev.model}${ev.weights === 'ema' ? ', EMA weights' : ''}) on ${ev.dataset} ${ev.split}: ${r.count} images${tta ? `, test-time augmentation: ${tta}` : ''}`);
  console.log(`top-1 ${(100 * r.top1).toFixed(2)}%   top-5 ${(100 * r.top5).toFixed(2)}%   loss ${r.loss.toFixed(4)}\n`);
  console.log(formatClassReport(ev.report));
  console.log('\nconfusion matrix (rows: true class, columns: predicted):');
  console.log(formatConfusion(r.confusion, ev.classes));
  return 0;
}
