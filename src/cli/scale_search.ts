// convkit scale-search: EfficientNet's grid search for alpha, beta, gamma (phi = 1, alpha *
// beta^2 * gamma^2 ~ budget), each candidate trained on a proxy schedule; resumable.
import { flag, intOpt, numOpt, parse, str, UsageError } from './args.js';
import { MAX_IMAGE_SIDE } from '../engine/limits.js';
import { DATASETS, RecipeError, loadRecipeFile, resolveRecipe, type Recipe } from '../train/recipe.js';

export const HELP = `usage: convkit scale-search --base <model> --dataset <name> -o <dir> [options]

Step 1 of EfficientNet's compound scaling: with phi = 1, tries every alpha, beta, gamma >= 1
on a grid with alpha * beta^2 * gamma^2 within --tolerance of --budget, trains the base scaled
by each (depth x alpha, width x beta, resolution x gamma) for --proxy-epochs, and ranks them by
test accuracy. Writes <dir>/search.json (settings and every finished candidate), search.txt
(the table) and one training run per candidate. Rerunning the same command resumes: finished
candidates are skipped, an interrupted one continues from its checkpoint. Ctrl-C stops after
saving.

options:
  --base <model>              an EfficientNet B variant (default efficientnet_b0)
  --dataset <name>            ${DATASETS.join(', ')} (required)
  --data-root <dir>           the dataset's folder
  -o, --out <dir>             the search folder (required)
  --budget <b>                target of alpha * beta^2 * gamma^2, >= 1 (default 2)
  --step <s>                  grid step of each coefficient (default 0.1; the paper's grid
                              is finer)
  --tolerance <t>             relative distance from the budget allowed (default 0.05)
  --proxy-epochs <n>          epochs per candidate (default 2)
  --base-width <w>            the base's width multiplier (a smaller proxy base)
  --base-depth <d>            the base's depth multiplier
  --resolution <px>           the base's resolution (default the dataset's image side)
  --resolution-multiple <n>   round scaled resolutions to a multiple of n (default 4)
  --recipe <file>             training settings of every candidate (JSON or YAML recipe)
  --limit-train <n>, --limit-test <n>, --batch-size <n>, --lr <x>, --threads <n>
                              the same as convkit train's, for every candidate
  --json                      print the results as JSON
  --quiet                     no per-candidate lines
  -h, --help                  this help`;

const C = 'scale-search';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    base: { type: 'string' }, dataset: { type: 'string' }, 'data-root': { type: 'string' }, out: { type: 'string', short: 'o' },
    budget: { type: 'string' }, step: { type: 'string' }, tolerance: { type: 'string' }, 'proxy-epochs': { type: 'string' },
    'base-width': { type: 'string' }, 'base-depth': { type: 'string' }, resolution: { type: 'string' }, 'resolution-multiple': { type: 'string' },
    recipe: { type: 'string' }, 'limit-train': { type: 'string' }, 'limit-test': { type: 'string' }, 'batch-size': { type: 'string' },
    lr: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
  }, { maxPositionals: 0 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const dataset = str(p, 'dataset');
  if (!dataset) throw new UsageError('--dataset is required', C);
  if (!(DATASETS as readonly string[]).includes(dataset)) throw new UsageError(`unknown dataset '${dataset}': expected one of ${DATASETS.join(', ')}`, C);
  const out = str(p, 'out');
  if (!out) throw new UsageError('the search folder is required: -o <dir>', C);
  const budget = numOpt(p, 'budget', C);
  if (budget !== undefined && budget < 1) throw new UsageError(`--budget must be >= 1 (alpha * beta^2 * gamma^2 with each coefficient >= 1 is at least 1), got ${budget}`, C);
  const step = numOpt(p, 'step', C, 0.01, 1);
  const tolerance = numOpt(p, 'tolerance', C, 0, 0.99);
  const proxyEpochs = intOpt(p, 'proxy-epochs', C, 1, 1000);
  const recipe: Partial<Recipe> = {};
  try {
    const file = str(p, 'recipe');
    if (file) Object.assign(recipe, loadRecipeFile(file));
    const put = <K extends keyof Recipe>(k: K, v: Recipe[K] | undefined): void => { if (v !== undefined) recipe[k] = v; };
    put('limitTrain', intOpt(p, 'limit-train', C, 1));
    put('limitTest', intOpt(p, 'limit-test', C, 1));
    put('batchSize', intOpt(p, 'batch-size', C, 1));
    put('lr', numOpt(p, 'lr', C, 0));
    put('threads', intOpt(p, 'threads', C, 1));
    resolveRecipe(recipe);
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message, C);
    throw e;
  }
  const base = {
    model: str(p, 'base') ?? 'efficientnet_b0', widthMult: numOpt(p, 'base-width', C, 1e-3, 64), depthMult: numOpt(p, 'base-depth', C, 1e-3, 64),
    resolution: intOpt(p, 'resolution', C, 1, MAX_IMAGE_SIDE), resolutionMultiple: intOpt(p, 'resolution-multiple', C, 1, 1024),
  };
  for (const k of ['widthMult', 'depthMult', 'resolution', 'resolutionMultiple'] as const) if (base[k] === undefined) delete base[k];
  await import('../models/index.js');
  const { scaleSearch, formatSearchTable } = await import('../train/scale_search.js');
  const { scalingBaseVariant } = await import('../models/scaling.js');
  try {
    scalingBaseVariant(base.model);
  } catch (e) {
    throw new UsageError((e as Error).message, C);
  }
  const quiet = flag(p, 'quiet') || flag(p, 'json');
  const log = (s: string): void => { if (!quiet) console.error(s); };
  let current: { stop(): void } | null = null;
  let stopping = false;
  const onSigint = (): void => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error('\nstopping after the current step (Ctrl-C again to quit at once); rerun the same command to resume');
    current?.stop();
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    result = await scaleSearch({
      base, dataset, dataRoot: str(p, 'data-root') ?? null, budget, step, tolerance, proxyEpochs, recipe, outDir: out,
      onTrainer: (t) => { current = t; },
      shouldStop: () => stopping,
      onEvent: (e) => {
        if (e.type === 'plan') log(`${e.candidates.length} candidates (alpha * beta^2 * gamma^2 ~ ${budget ?? 2}), ${e.done} already done`);
        else if (e.type === 'skip') log(`[${e.index + 1}] ${e.candidate.key}: done before, skipped`);
        else if (e.type === 'candidateStart') log(`[${e.index + 1}] ${e.candidate.key}: resolution ${e.candidate.resolution}, ${(e.candidate.macs / 1e6).toFixed(1)} M MACs${e.resumed ? ' (resuming)' : ''}`);
        else if (e.type === 'candidateEnd') log(`[${e.index + 1}] ${e.result.key}: top-1 ${(100 * e.result.accuracy).toFixed(2)}% in ${e.result.seconds.toFixed(1)} s`);
        else if (e.type === 'stopped') log(`stopped with ${e.done} of ${e.total} candidates done; rerun to resume`);
      },
    });
  } catch (e) {
    if (e instanceof RecipeError || e instanceof RangeError) throw new UsageError(e.message, C);
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (flag(p, 'json')) console.log(JSON.stringify({ complete: result.complete, settings: result.state.settings, ranked: result.ranked }, null, 2));
  else console.log(formatSearchTable(result.ranked));
  return result.complete ? 0 : 130;
}
