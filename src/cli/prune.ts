// convkit prune <checkpoint | run folder> --method l1|bn|taylor|magnitude -o out/: structured
// channel pruning to a MACs target (or unstructured magnitude pruning to a sparsity), optional
// fine-tuning with the trainer, a normal run folder out.
import { DATASETS } from '../train/recipe.js';
import { flag, intOpt, numOpt, parse, str, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';
import { MAX_BATCH } from '../engine/limits.js';

const METHODS = ['l1', 'bn', 'taylor', 'magnitude'] as const;

export const HELP = `usage: convkit prune <checkpoint | run folder> --method <m> (--target-macs <f> | --sparsity <f>) -o <dir> [options]

Prunes a trained model. Structured methods remove whole channels (filters) and rebuild the
layers smaller, so MACs and latency really drop; the channels that must go together
(convolutions feeding one residual add, depthwise convolutions and their producers, SE gates,
concatenations, the classifier's input) are found from the traced graph. The same fraction of
each coupled group's channels is removed, the least important first:
  l1         L1 norm of the filters making and the weights reading a channel
  bn         |gamma| of the channel's BatchNorms (network slimming)
  taylor     |activation x gradient| summed over a few batches of training data
  magnitude  unstructured: the smallest weights set to zero, Zhu & Gupta's gradual schedule
             over the fine-tuning, masks kept through every step. Stored sparsely the
             weights shrink, but dense kernels run no faster: MACs and latency stay.
The output folder is a run folder: model.safetensors (its model options describe the pruned
architecture, so convkit eval, predict and export load it), the fine-tuning's checkpoints and
report, and prune.json (MACs, parameters, groups, per-layer sparsity).

options:
  --method <m>             ${METHODS.join(', ')} (required)
  --target-macs <f>        structured: the fraction of the MACs to keep, in (0, 1)
  --sparsity <f>           magnitude: the fraction of conv/linear weights zeroed, in (0, 1)
  --scope <global|layer>   magnitude: one threshold for the model (default) or per layer
  --iterative <n>          structured: n rounds, each pruning to target^(k/n), each fine-tuned
  --finetune-epochs <e>    epochs of fine-tuning after each round (default 0)
  --dataset <name>         training data (default: the checkpoint's): ${DATASETS.join(', ')}
  --data-root <dir>        the dataset's folder
  --lr <x>                 fine-tuning learning rate (default: a tenth of the run's)
  --batch-size <n>         fine-tuning batch size (default: the run's)
  --limit-train <n>        fine-tune on a seeded subset of n training images
  --limit-test <n>         evaluate on a seeded subset of n test images
  --taylor-batches <n>     batches scored for Taylor importance (default 4)
  --round-to <n>           keep a multiple of n channels per group (default 16: the AVX-512
                           kernels' channel blocks; groups of n or fewer are cut to 8, 4 ...
                           only when the target needs it; 1 keeps exactly the ratio)
  --model <name>           the registered model, for weights files convkit did not write
  -o, --output <dir>       the folder to write (required)
  --overwrite              write into a folder that already holds a run
  --json                   print the result as JSON
${IMPORT_HELP}
  -h, --help               this help`;

const C = 'prune';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    method: { type: 'string' }, 'target-macs': { type: 'string' }, sparsity: { type: 'string' }, scope: { type: 'string' },
    iterative: { type: 'string' }, 'finetune-epochs': { type: 'string' }, dataset: { type: 'string' }, 'data-root': { type: 'string' },
    lr: { type: 'string' }, 'batch-size': { type: 'string' }, 'limit-train': { type: 'string' }, 'limit-test': { type: 'string' },
    'taylor-batches': { type: 'string' }, 'round-to': { type: 'string' }, model: { type: 'string' }, output: { type: 'string', short: 'o' }, overwrite: { type: 'boolean' },
    json: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const out = str(p, 'output');
  if (!out) throw new UsageError('give the folder to write with -o <dir>', C);
  const method = str(p, 'method');
  if (!method) throw new UsageError(`give --method: ${METHODS.join(', ')}`, C);
  if (!(METHODS as readonly string[]).includes(method)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got '${method.slice(0, 40)}'`, C);
  const targetMacs = numOpt(p, 'target-macs', C);
  const sparsity = numOpt(p, 'sparsity', C);
  if (method === 'magnitude') {
    if (sparsity === undefined) throw new UsageError('--method magnitude needs --sparsity <f> (the fraction of weights zeroed)', C);
    if (!(sparsity > 0 && sparsity < 1)) throw new UsageError(`--sparsity must be in (0, 1), got ${sparsity}`, C);
    if (targetMacs !== undefined) throw new UsageError('--target-macs is for structured pruning: magnitude pruning leaves the MACs unchanged', C);
  } else {
    if (targetMacs === undefined) throw new UsageError(`--method ${method} needs --target-macs <f> (the fraction of the MACs to keep, e.g. 0.5)`, C);
    if (!(targetMacs > 0 && targetMacs < 1)) throw new UsageError(`--target-macs is the fraction of the MACs to keep and must be in (0, 1) (0.5 halves them), got ${targetMacs}`, C);
    if (sparsity !== undefined) throw new UsageError('--sparsity is for --method magnitude', C);
  }
  const scope = str(p, 'scope');
  if (scope !== undefined && scope !== 'global' && scope !== 'layer') throw new UsageError(`--scope must be global or layer, got '${scope.slice(0, 40)}'`, C);
  const dataset = str(p, 'dataset');
  if (dataset !== undefined && !(DATASETS as readonly string[]).includes(dataset)) throw new UsageError(`--dataset must be one of ${DATASETS.join(', ')}, got '${dataset.slice(0, 40)}'`, C);
  const o = {
    method: method as (typeof METHODS)[number], targetMacs, sparsity, scope: scope as 'global' | 'layer' | undefined,
    iterative: intOpt(p, 'iterative', C, 1, 100), finetuneEpochs: intOpt(p, 'finetune-epochs', C, 0, 10_000), dataset, dataRoot: str(p, 'data-root'),
    lr: numOpt(p, 'lr', C, 0), batchSize: intOpt(p, 'batch-size', C, 1, MAX_BATCH), limitTrain: intOpt(p, 'limit-train', C, 1),
    limitTest: intOpt(p, 'limit-test', C, 1), taylorBatches: intOpt(p, 'taylor-batches', C, 1, 10_000), roundTo: intOpt(p, 'round-to', C, 1, 1024), model: str(p, 'model'),
    outDir: out, overwrite: flag(p, 'overwrite'),
  };
  await import('../models/index.js');
  await importUserModules(p, C);
  const { pruneCheckpoint } = await import('../compress/prune_run.js');
  const json = flag(p, 'json');
  const r = await pruneCheckpoint(p.positionals[0], {
    ...o,
    log: (line) => { if (!json) console.log(line); },
    onEvent: (e) => {
      if (json) return;
      if (e.type === 'epochEnd') console.log(`  fine-tune epoch ${e.record.epoch}: loss ${e.record.trainLoss.toFixed(4)}, ${e.record.evalSplit} accuracy ${(e.record.valAcc * 100).toFixed(2)}%`);
    },
  });
  if (json) console.log(JSON.stringify(r));
  else {
    if (r.sparsity) {
      const t = r.sparsity.total;
      console.log(`sparsity ${(t.sparsity * 100).toFixed(1)}% of ${t.numel} conv/linear weights; stored as bitmap + nonzeros ${(r.sparsity.bytes.sparse / 1e6).toFixed(2)} MB instead of ` +
        `${(r.sparsity.bytes.dense / 1e6).toFixed(2)} MB (dense kernels do not run faster on zeros)`);
    }
    if (r.macsBefore !== null && r.macsAfter !== null) console.log(`MACs ${(r.macsBefore / 1e6).toFixed(2)}M -> ${(r.macsAfter / 1e6).toFixed(2)}M (${(r.macsAfter / r.macsBefore * 100).toFixed(1)}%), ${Object.keys(r.prunedLayers).length} layers narrower`);
    console.log(`wrote ${r.files.model} and ${r.files.report}`);
  }
  return 0;
}
