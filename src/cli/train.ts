// convkit train: runs a recipe (the default: airbench_m on Fashion-MNIST) with a progress bar,
// checkpoints every epoch, and resumes with --resume. Ctrl-C stops after the current step with a
// checkpoint that resumes there (exit code 130); a second Ctrl-C exits at once.
import * as fs from 'node:fs';
import * as path from 'node:path';
// The trainer and the model zoo load libtorch: they are imported only once the arguments are
// known to be good, so --help and usage errors answer at once.
import type { Trainer, TrainerEvent, TrainResult } from '../train/trainer.js';
import type { DdpOptions, ProcessGroup } from '../distributed/index.js';
import { DDP_COMM_HOOKS, type DdpCommHook } from '../distributed/comm_hooks.js';
import { loadRecipeFile, resolveRecipe, RecipeError, DEFAULT_RECIPE, RECIPE_KEYS, type Recipe } from '../train/recipe.js';
import { ProgressBar, formatDuration } from '../train/progress.js';
import { autoBoolOpt, flag, intOpt, numOpt, parse, shapeOpt, str, UsageError, type OptionSpec, type Parsed } from './args.js';
import { MAX_IMAGE_SIDE } from '../engine/limits.js';
import { isOnnxFile } from '../io/files.js';
import type { Teacher } from '../train/distill.js';
import { IMPORT_HELP, fetchPretrainedWeights, importUserModules } from './common.js';

export const HELP = `usage: convkit train [options]
       convkit train --recipe recipe.yaml [options]
       convkit train --resume [run-folder | checkpoint]

Trains a classifier. With no options: ${DEFAULT_RECIPE.model} on ${DEFAULT_RECIPE.dataset}, ${DEFAULT_RECIPE.epochs} epochs.
Options override the recipe file, which overrides the defaults. Writes to the output folder
(default runs/<model>-<dataset>-<time>): recipe.json, log.jsonl, last.safetensors,
best.safetensors, model.safetensors and report.html.

recipe:
  --recipe <file>            a recipe in JSON or YAML (keys: see --list-keys)
  --set <key=value>          set any recipe key (value as JSON, else a string); repeatable
  --list-keys                print every recipe key with its default and exit
  --dry-run                  print the recipe that would run and exit

model and data:
  --model <name>             a registered model (convkit models)
  --dataset <name>           fashion-mnist, mnist, cifar10, cifar100, folder, synthetic
  --data-root <dir>          the dataset's folder (cifar, folder; mnist layouts optional)
  --num-classes <n>          classifier outputs (default: the dataset's classes)
  --in-channels <n>          input channels (default: the dataset's; 3 on mnist or fashion-mnist
                             repeats the gray images to RGB, for a model with an RGB stem)
  --limit-train <n>          train on a seeded random subset of n images
  --limit-test <n>           evaluate on a seeded random subset of n images
  --val-fraction <f>         hold out this fraction of train for validation (0: use test)
  --image-size <h,w>         train and evaluate at this size (image folders are decoded at it,
                             other datasets resized batch by batch, e.g. 224,224 for ImageNet weights)

optimisation:
  --epochs <n>  --batch-size <n>  --eval-batch-size <n>
  --optimizer <name>         sgd, adam, adamw, rmsprop
  --lr <f>  --momentum <f>  --weight-decay <f>  --no-nesterov
  --schedule <name>          cosine, onecycle, step, multistep, exponential, linear, constant
  --warmup-epochs <f>  --min-lr <f>
  --label-smoothing <f>  --mixup <alpha>  --cutmix <alpha>
  --augment <json>           training transforms, e.g. '[{"name":"randomCrop","size":28,"padding":2}]'
  --no-augment               no augmentation
  --ema <decay>              keep an EMA of the weights (e.g. 0.999) and evaluate it too
  --eval-translate <px>      the final evaluation also averages views shifted by +-px (0: off)
  --clip-grad <norm>         clip the gradient norm
  --bf16 <on|off|auto>       bfloat16 autocast (auto: on where the CPU has AVX-512 BF16 and a
                             timed training step is 1.1x faster with it)
  --channels-last <on|off|auto>   NHWC activations (auto: on; faster on CPUs in fp32 too)
  --seed <n>  --threads <n>

transfer learning:
  --pretrained               start from torchvision's ImageNet weights for --model (downloaded once
                             into $CONVKIT_CACHE_DIR, default ~/.cache/convkit; mirror: $CONVKIT_WEIGHTS_URL);
                             the head is replaced and a stem for gray images adapted (RGB kernels summed)
  --init <file>              start from these weights (safetensors, checkpoint or .pth; an RGB stem
                             is adapted to the dataset's channels)
  --keep-head                fail instead of replacing a classifier of another class count
  --freeze-backbone-epochs <n>   train only the head for the first n epochs
  --backbone-lr <f>          the backbone's learning rate (the head uses --lr)

distillation (Hinton et al.: loss = (1 - alpha) * hard + alpha * T^2 * KL(teacher/T || student/T)):
  --teacher <file>           a checkpoint, model.safetensors or .onnx, run in eval mode without
                             gradients on each augmented batch (its batch renormalised and resized
                             to what it was trained on); its time per step shows in the progress line.
                             A teacher trained with --label-smoothing 0 teaches better: label
                             smoothing flattens the soft targets distillation learns from
  --distill-alpha <f>        the weight of the teacher's term (default 0.5)
  --temperature <f>          the softening temperature T (default 4)

quantization-aware training (then convkit quantize the run):
  --qat                      fine-tune with fake-quantized layers: int8 weights per output channel,
                             uint8 inputs (moving min/max), straight-through gradients, float32;
                             start from a trained model with --init, at a small --lr for a few epochs

data-parallel (c10d, Gloo; --batch-size is the global batch, split over the processes):
  --nproc-per-node <n>       start n worker processes on this machine (each with its share of the cores)
  --nnodes <m>  --node-rank <r>   several machines: m in all, this one is r (default 1, 0)
  --master-addr <host>  --master-port <port>   rank 0's machine and port (default 127.0.0.1 and,
                             on one machine, a free port; else 29500)
  --sync-bn                  BatchNorm statistics over the global batch (SyncBatchNorm)
  --ddp-comm-hook <name>     how gradients are averaged over the processes: allreduce (float32,
                             default) or fp16 (sent as float16: half the bytes, gradients rounded
                             to float16; PyTorch's fp16_compress_hook)
  --dist-timeout <s>         how long a collective waits for a peer (default 1800)
  --rdzv-timeout <s>         how long the processes wait for each other at the start (default 300)
  Without --nproc-per-node, a process started by torchrun (or any launcher that sets RANK,
  WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) joins that job. Rank 0 writes the files.

run:
  --out-dir <dir>            output folder
  --resume [path]            continue a run (its folder or checkpoint; alone: the newest run in runs/)
  --overwrite                allow an output folder that already holds a run
  --quiet                    no progress bar, only the epoch lines
  --json                     print the final result as JSON on stdout
${IMPORT_HELP}
  -h, --help                 this help`;

const OPTIONS: OptionSpec = {
  recipe: { type: 'string' }, set: { type: 'string', multiple: true }, 'list-keys': { type: 'boolean' }, 'dry-run': { type: 'boolean' },
  model: { type: 'string' }, dataset: { type: 'string' }, 'data-root': { type: 'string' }, 'num-classes': { type: 'string' },
  'in-channels': { type: 'string' }, 'limit-train': { type: 'string' }, 'limit-test': { type: 'string' }, 'val-fraction': { type: 'string' },
  'image-size': { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' }, 'eval-batch-size': { type: 'string' },
  optimizer: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
  'no-nesterov': { type: 'boolean' }, schedule: { type: 'string' }, 'warmup-epochs': { type: 'string' }, 'min-lr': { type: 'string' },
  'label-smoothing': { type: 'string' }, mixup: { type: 'string' }, cutmix: { type: 'string' }, augment: { type: 'string' },
  'no-augment': { type: 'boolean' }, ema: { type: 'string' }, 'eval-translate': { type: 'string' }, 'clip-grad': { type: 'string' }, bf16: { type: 'string' },
  'channels-last': { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' }, init: { type: 'string' }, pretrained: { type: 'boolean' },
  'keep-head': { type: 'boolean' }, 'freeze-backbone-epochs': { type: 'string' }, 'backbone-lr': { type: 'string' },
  teacher: { type: 'string' }, 'distill-alpha': { type: 'string' }, temperature: { type: 'string' }, qat: { type: 'boolean' },
  'out-dir': { type: 'string' }, resume: { type: 'string' }, overwrite: { type: 'boolean' }, quiet: { type: 'boolean' },
  json: { type: 'boolean' }, import: { type: 'string', multiple: true },
  'nproc-per-node': { type: 'string' }, nnodes: { type: 'string' }, 'node-rank': { type: 'string' }, 'master-addr': { type: 'string' },
  'master-port': { type: 'string' }, 'sync-bn': { type: 'boolean' }, 'dist-timeout': { type: 'string' }, 'rdzv-timeout': { type: 'string' },
  'ddp-comm-hook': { type: 'string' },
};

/** The launcher's own flags: the workers get every other argument. */
const LAUNCHER_FLAGS = ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port'];

const C = 'train';

/** DDP's options from the data-parallel flags; not part of the recipe (a resumed run may change them). */
function ddpOptions(p: Parsed): DdpOptions {
  const hook = str(p, 'ddp-comm-hook');
  if (hook === undefined) return {};
  if (!(DDP_COMM_HOOKS as readonly string[]).includes(hook)) {
    throw new UsageError(`--ddp-comm-hook must be ${DDP_COMM_HOOKS.join(' or ')}, got '${hook.slice(0, 40)}'`, C);
  }
  return { commHook: hook as DdpCommHook };
}

/** The recipe keys the command-line options give (only those given). */
export function recipeFromOptions(p: Parsed): Partial<Recipe> {
  const r: Record<string, unknown> = {};
  const put = (key: keyof Recipe, v: unknown): void => { if (v !== undefined) r[key] = v; };
  put('model', str(p, 'model'));
  put('dataset', str(p, 'dataset'));
  put('dataRoot', str(p, 'data-root'));
  put('numClasses', intOpt(p, 'num-classes', C, 1));
  put('inChannels', intOpt(p, 'in-channels', C, 1));
  put('limitTrain', intOpt(p, 'limit-train', C, 1));
  put('limitTest', intOpt(p, 'limit-test', C, 1));
  put('valFraction', numOpt(p, 'val-fraction', C, 0, 0.99));
  put('imageSize', shapeOpt(p, 'image-size', C, [2], MAX_IMAGE_SIDE));
  put('epochs', intOpt(p, 'epochs', C, 1));
  put('batchSize', intOpt(p, 'batch-size', C, 1));
  put('evalBatchSize', intOpt(p, 'eval-batch-size', C, 1));
  put('optimizer', str(p, 'optimizer'));
  put('lr', numOpt(p, 'lr', C, 0));
  put('momentum', numOpt(p, 'momentum', C, 0, 1));
  put('weightDecay', numOpt(p, 'weight-decay', C, 0));
  if (flag(p, 'no-nesterov')) r.nesterov = false;
  put('schedule', str(p, 'schedule'));
  put('warmupEpochs', numOpt(p, 'warmup-epochs', C, 0));
  put('minLr', numOpt(p, 'min-lr', C, 0));
  put('labelSmoothing', numOpt(p, 'label-smoothing', C, 0, 0.99));
  put('mixup', numOpt(p, 'mixup', C, 0));
  put('cutmix', numOpt(p, 'cutmix', C, 0));
  const aug = str(p, 'augment');
  if (aug !== undefined) {
    try {
      r.augment = JSON.parse(aug);
    } catch {
      throw new UsageError(`--augment must be a JSON list of transforms, got '${aug}'`, C);
    }
  }
  if (flag(p, 'no-augment')) r.augment = [];
  put('ema', numOpt(p, 'ema', C, 0, 0.999999));
  put('clipGradNorm', numOpt(p, 'clip-grad', C, 0));
  put('evalTranslate', intOpt(p, 'eval-translate', C, 0));
  put('bf16', autoBoolOpt(p, 'bf16', C));
  put('channelsLast', autoBoolOpt(p, 'channels-last', C));
  put('seed', intOpt(p, 'seed', C, 0));
  put('threads', intOpt(p, 'threads', C, 1));
  put('init', str(p, 'init'));
  if (flag(p, 'pretrained')) r.pretrained = true;
  if (flag(p, 'keep-head')) r.replaceHead = false;
  put('freezeBackboneEpochs', intOpt(p, 'freeze-backbone-epochs', C, 0));
  put('backboneLr', numOpt(p, 'backbone-lr', C, 0));
  put('teacher', str(p, 'teacher'));
  put('distillAlpha', numOpt(p, 'distill-alpha', C, 0, 1));
  put('distillTemperature', numOpt(p, 'temperature', C, 1e-3, 1000));
  if (flag(p, 'qat')) r.qat = true;
  put('outDir', str(p, 'out-dir'));
  if (flag(p, 'sync-bn')) r.syncBatchNorm = true;
  for (const kv of (p.values.set as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set expects key=value, got '${kv}'`, C);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    r[key] = value;
  }
  return r as Partial<Recipe>;
}

/** '--resume' may come without a value: then the newest run under runs/ (or --out-dir). */
function fillResume(args: string[]): string[] {
  const i = args.indexOf('--resume');
  if (i < 0) return args;
  const next = args[i + 1];
  if (next !== undefined && !next.startsWith('-')) return args;
  return [...args.slice(0, i + 1), '', ...args.slice(i + 1)];
}

function newestRun(outDir: string | undefined): string {
  if (outDir) return outDir;
  const root = 'runs';
  const runs = fs.existsSync(root) ? fs.readdirSync(root).map((d) => path.join(root, d)).filter((d) => fs.existsSync(path.join(d, 'last.safetensors'))) : [];
  if (runs.length === 0) throw new UsageError('--resume: no run to resume under runs/; give its folder or checkpoint', C);
  return runs.sort((a, b) => fs.statSync(path.join(b, 'last.safetensors')).mtimeMs - fs.statSync(path.join(a, 'last.safetensors')).mtimeMs)[0];
}

function listKeys(): string {
  return RECIPE_KEYS.map((k) => `${k.padEnd(22)} ${JSON.stringify(DEFAULT_RECIPE[k])}`).join('\n');
}

const pct = (v: number | null): string => (v === null ? '-' : `${(100 * v).toFixed(2)}%`);

/** Draws the progress bar and the per-epoch lines on stderr. */
function reporter(quiet: boolean): (e: TrainerEvent) => void {
  let bar: ProgressBar | null = null;
  const err = process.stderr;
  return (e) => {
    switch (e.type) {
      case 'bf16Probe':
        err.write(`bf16 autocast ${e.bf16 ? 'on' : 'off'}: a forward + backward pass took ${e.bf16Ms.toFixed(1)} ms in bf16, ${e.fp32Ms.toFixed(1)} ms in fp32\n`);
        break;
      case 'start': {
        const r = e.recipe;
        const batch = e.worldSize > 1 ? `global batch ${r.batchSize} (${Math.floor(r.batchSize / e.worldSize)}${r.batchSize % e.worldSize ? '-' + Math.ceil(r.batchSize / e.worldSize) : ''} on each of ${e.worldSize} processes)` : `batch ${r.batchSize}`;
        err.write(`${e.resumed ? 'resuming' : 'training'} ${r.model} (${e.numParams.toLocaleString('en-US')} parameters) on ${r.dataset}: ` +
          `${e.trainSize} train / ${e.evalSize} ${e.evalSplit} images, ${r.epochs} epochs, ${batch}, ${r.optimizer} lr ${r.lr}, ` +
          `${r.bf16 ? 'bf16' : 'fp32'}${r.channelsLast ? ' channels-last' : ''}${e.resumed ? `, from epoch ${e.epoch + 1} batch ${e.batch}` : ''}\n`);
        if (r.teacher) err.write(`distilling from ${r.teacher} (alpha ${r.distillAlpha}, temperature ${r.distillTemperature})\n`);
        err.write(`output: ${e.outDir}\n`);
        break;
      }
      case 'epochStart':
        if (!quiet) bar = new ProgressBar({ total: e.numBatches, label: `epoch ${e.epoch + 1}/${e.epochs}`, start: e.startBatch });
        break;
      case 'step':
        bar?.update(e.batch, {
          loss: e.loss.toFixed(4), acc: pct(e.acc), lr: e.lr.toExponential(2), 'img/s': e.imagesPerSec.toFixed(0),
          ...(e.teacherMs !== null ? { teacher: `${e.teacherMs.toFixed(0)} ms/step` } : {}),
        });
        break;
      case 'epochEnd': {
        const h = e.record;
        const line = `epoch ${h.epoch}: train loss ${h.trainLoss.toFixed(4)} acc ${pct(h.trainAcc)} | ${h.evalSplit} loss ${h.valLoss.toFixed(4)} ` +
          `top-1 ${pct(h.valAcc)} top-5 ${pct(h.valTop5)}${h.emaAcc !== null ? ` | EMA top-1 ${pct(h.emaAcc)}` : ''} | ` +
          `${h.imagesPerSec.toFixed(0)} img/s, ${formatDuration(h.epochSeconds)}, RSS ${h.rssMB.toFixed(0)} MB${e.best ? ' *best' : ''}`;
        if (bar) bar.finish(line);
        else err.write(`${line}\n`);
        bar = null;
        break;
      }
      case 'interrupted':
        bar?.finish();
        bar = null;
        err.write(`interrupted at epoch ${e.epoch + 1}, batch ${e.batch}: saved ${e.file}\nresume with: convkit train --resume ${path.dirname(e.file)}\n`);
        break;
      default:
    }
  };
}

/** Which test-time augmentation the final figures used, so that `convkit eval` can repeat them. */
function ttaNote(e: { evalFlip?: boolean; evalTranslate?: number }): string {
  const opts = [e.evalFlip ? '--flip' : '', (e.evalTranslate ?? 0) > 0 ? `--translate ${e.evalTranslate}` : ''].filter(Boolean);
  return opts.length ? ` (test-time augmentation: convkit eval ${opts.join(' ')})` : '';
}

function printSummary(r: TrainResult): void {
  const last = r.last;
  const lines = [
    `done: ${r.epochs} epochs in ${formatDuration(r.seconds)}`,
    last ? `final ${last.evalSplit} top-1 ${pct(last.valAcc)}, top-5 ${pct(last.valTop5)}, loss ${last.valLoss.toFixed(4)}${last.emaAcc !== null ? `, EMA top-1 ${pct(last.emaAcc)}` : ''}${ttaNote(last)}` : '',
    `best top-1 ${pct(r.bestAcc)} at epoch ${r.bestEpoch}`,
    `files: ${r.files.model}, ${r.files.best}, ${r.files.report}`,
  ];
  process.stderr.write(`${lines.filter(Boolean).join('\n')}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const p = parse(C, fillResume(argv), OPTIONS, { maxPositionals: 0 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  if (flag(p, 'list-keys')) { console.log(listKeys()); return 0; }
  const layers = makeLayers(p);
  ddpOptions(p); // checked here too: the launcher reports a bad value before any worker starts
  if (str(p, 'nproc-per-node') !== undefined && !flag(p, 'dry-run')) return launch(p, argv);
  const { inDistributedJob } = await import('../distributed/env.js');
  if (inDistributedJob() && !flag(p, 'dry-run')) return runWorker(p, layers);
  for (const f of LAUNCHER_FLAGS) if (str(p, f) !== undefined) throw new UsageError(`--${f} needs --nproc-per-node (the processes to start on this machine)`, C);
  if (str(p, 'ddp-comm-hook') !== undefined && !flag(p, 'dry-run')) {
    throw new UsageError('--ddp-comm-hook applies to data-parallel training: add --nproc-per-node, or start the command with torchrun', C);
  }
  return train(p, layers, null);
}

/** --nproc-per-node: starts the workers (this same command without the launcher's flags) and waits for them. */
async function launch(p: Parsed, argv: string[]): Promise<number> {
  const { launchWorkers, describeExit } = await import('../distributed/launch.js');
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') ? argv[i].slice(2).split('=')[0] : '';
    if (LAUNCHER_FLAGS.includes(name)) {
      if (!argv[i].includes('=')) i += 1;
      continue;
    }
    args.push(argv[i]);
  }
  const nproc = intOpt(p, 'nproc-per-node', C, 1, 1024)!;
  const result = await launchWorkers({
    nprocPerNode: nproc, nnodes: intOpt(p, 'nnodes', C, 1), nodeRank: intOpt(p, 'node-rank', C, 0), masterAddr: str(p, 'master-addr'),
    masterPort: intOpt(p, 'master-port', C, 1, 65535), script: process.argv[1], args: [C, ...args],
    // 130: stopped by Ctrl-C with a checkpoint, which rank 0 has reported
    onExit: (e) => { if ((e.code !== 0 && e.code !== 130) || e.signal) process.stderr.write(`convkit train: ${describeExit(e)}\n`); },
  });
  return result.code;
}

/** A worker of a data-parallel job (torchrun's variables set): joins the group, then trains. */
async function runWorker(p: Parsed, layers: Partial<Recipe>[]): Promise<number> {
  const { ProcessGroup, workerEnv, watchLauncher, DistributedEnvError } = await import('../distributed/index.js');
  watchLauncher();
  const seconds = (name: string): number | undefined => {
    const v = numOpt(p, name, C, 0.001, 1e7);
    return v === undefined ? undefined : Math.round(v * 1000);
  };
  let env;
  try {
    env = workerEnv();
  } catch (e) {
    if (e instanceof DistributedEnvError) throw new UsageError(e.message, C);
    throw e;
  }
  const group = await ProcessGroup.init({ ...env, timeoutMs: seconds('dist-timeout'), rendezvousTimeoutMs: seconds('rdzv-timeout') });
  let code: number;
  try {
    code = await train(p, layers, group);
  } catch (e) {
    // the survivors' error names this rank and quotes this; the group is left to the exit (its
    // threads may wait on a dead peer)
    group.reportFailure((e as Error).message ?? String(e));
    throw e;
  }
  group.destroy();
  return code;
}

async function train(p: Parsed, layers: Partial<Recipe>[], group: ProcessGroup | null): Promise<number> {
  await import('../models/index.js');
  await importUserModules(p, C);
  let trainer: Trainer;
  try {
    if (flag(p, 'dry-run')) {
      console.log(JSON.stringify(await plannedRecipe(layers), null, 2));
      return 0;
    }
    trainer = await makeTrainer(p, layers, group);
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message, C);
    throw e;
  }
  const rank0 = trainer.writesFiles;
  if (rank0) trainer.on(reporter(flag(p, 'quiet')));
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      if (rank0) process.stderr.write('\nstopping after this step (Ctrl-C again to quit at once)...\n');
      trainer.stop();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await trainer.run();
    if (flag(p, 'json') && rank0) console.log(JSON.stringify(result, null, 2));
    if (result.interrupted) return 130;
    if (rank0) printSummary(result);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    trainer.dispose();
  }
}

/** The recipe layers (file, then options), checked; usage errors surface before anything loads. */
function makeLayers(p: Parsed): Partial<Recipe>[] {
  try {
    const file = str(p, 'recipe');
    const layers = [file ? loadRecipeFile(file) : {}, recipeFromOptions(p)];
    if (str(p, 'resume') === undefined) resolveRecipe(...layers);
    return layers;
  } catch (e) {
    if (e instanceof RecipeError) throw new UsageError(e.message, C);
    throw e;
  }
}

async function checkModel(name: string): Promise<void> {
  const { modelEntry } = await import('../models/index.js');
  try {
    modelEntry(name);
  } catch (e) {
    throw new UsageError((e as Error).message, C);
  }
}

/** The recipe a run would use, 'auto' settings decided, without loading any data. */
async function plannedRecipe(layers: Partial<Recipe>[]): Promise<Recipe> {
  const r = resolveRecipe(...layers);
  await checkModel(r.model);
  const { finalizeRecipe } = await import('../train/trainer.js');
  finalizeRecipe(r);
  return r;
}

async function fetchWeights(model: string, group: ProcessGroup | null): Promise<void> {
  // every rank checks the name (a bad one fails them all, none waits at the barrier); rank 0 downloads
  await fetchPretrainedWeights(model, C, !group || group.rank === 0);
  await group?.barrier().wait();
}

async function makeTrainer(p: Parsed, layers: Partial<Recipe>[], group: ProcessGroup | null): Promise<Trainer> {
  const { Trainer } = await import('../train/trainer.js');
  const distributed = group ? { group, ddp: ddpOptions(p) } : undefined;
  const resume = str(p, 'resume');
  const fromOptions = layers[1];
  if (resume !== undefined) {
    const given = Object.keys(fromOptions).filter((k) => k !== 'outDir');
    if (given.length || str(p, 'recipe')) {
      throw new UsageError(`--resume continues a run with its own recipe; drop ${given.length ? given.map((k) => `'${k}'`).join(', ') : '--recipe'}`, C);
    }
    const from = resume === '' ? newestRun(fromOptions.outDir ?? undefined) : resume;
    return Trainer.resume(from, { distributed, teacher: await onnxTeacherOf(Trainer.recipeOf(from).teacher) });
  }
  const r = resolveRecipe(...layers);
  await checkModel(r.model);
  // downloaded here, with its progress bar, so that building the model finds it in the cache;
  // in a data-parallel job rank 0 alone downloads and the others wait for it
  if (r.pretrained) await fetchWeights(r.model, group);
  return Trainer.create(Object.assign({}, ...layers) as Partial<Recipe>, { overwrite: flag(p, 'overwrite'), distributed, teacher: await onnxTeacherOf(r.teacher) });
}

/** An ONNX teacher is ONNX Runtime's, loaded here (the trainer loads checkpoint teachers itself). */
async function onnxTeacherOf(file: string | null): Promise<Teacher | undefined> {
  if (!file || !isOnnxFile(file)) return undefined;
  const { onnxTeacher } = await import('../deploy/teacher.js');
  return onnxTeacher(file);
}
