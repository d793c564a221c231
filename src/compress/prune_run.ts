// pruneCheckpoint: what `convkit prune` does. A checkpoint (or run folder) is pruned, in one or
// several rounds each followed by fine-tuning with the Trainer, and written as a normal run
// folder: model.safetensors whose model options carry the pruned architecture (prunedLayers),
// so `convkit eval`, `predict` and `export` build the smaller model, the Trainer's checkpoints
// when it fine-tuned, and prune.json with what was done and measured.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withDevice, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseSafetensorsHeader } from '../io/index.js';
import { createModel, diffLayers, modelEntry, type PrunedLayers } from '../models/index.js';
import { CHECKPOINT_FORMAT } from '../models/weights.js';
import { readCheckpointMeta, saveModelWeights } from '../train/checkpoint.js';
import { checkTrainState } from '../train/train_state.js';
import { buildRunData, evalLoader } from '../train/data.js';
import { resolveRecipe, type Recipe } from '../train/recipe.js';
import { Trainer, type TrainerListener, type TrainResult } from '../train/trainer.js';
import { loadExportSource } from '../export/source.js';
import { pruneChannels, PruneError, type ChannelPruneResult } from './prune.js';
import { IMPORTANCE_METHODS, type TaylorBatch } from './prune_importance.js';
import { MagnitudePruner, gradualSparsity, sparseBytes, type LayerSparsity } from './prune_magnitude.js';

export type PruneMethod = 'l1' | 'bn' | 'taylor' | 'magnitude';
export const PRUNE_METHODS: readonly PruneMethod[] = [...IMPORTANCE_METHODS, 'magnitude'];

export interface PruneRunOptions {
  method: PruneMethod;
  /** structured methods: the fraction of the MACs to keep, in (0, 1) */
  targetMacs?: number;
  /** magnitude: the fraction of Conv2d/Linear weights set to zero, in (0, 1) */
  sparsity?: number;
  /** magnitude: one threshold for the model ('global', default) or per layer */
  scope?: 'global' | 'layer';
  /** structured: prune in N rounds (each to target^(k/N)), fine-tuning after each (default 1) */
  iterative?: number;
  /** epochs of fine-tuning after each round (default 0: none) */
  finetuneEpochs?: number;
  /** the training data (default: the checkpoint's) */
  dataset?: string;
  dataRoot?: string;
  /** fine-tuning learning rate (default: a tenth of the checkpoint recipe's) */
  lr?: number;
  batchSize?: number;
  limitTrain?: number;
  limitTest?: number;
  /** Taylor: batches of training data to score on (default 4) */
  taylorBatches?: number;
  /** structured: each group keeps a multiple of this many channels (default 16; see ChannelPruneOptions) */
  roundTo?: number;
  /** the registered model, for weights files convkit did not write */
  model?: string;
  outDir: string;
  /** allow an outDir that already holds a run */
  overwrite?: boolean;
  onEvent?: TrainerListener;
  log?: (line: string) => void;
  /** recipe fields for the fine-tuning, over the checkpoint's (threads, seed, ...) */
  recipe?: Partial<Recipe>;
}

export interface PruneRound {
  round: number;
  targetMacs: number;
  structured: Omit<ChannelPruneResult, 'groups'> & { groups: number } | null;
  finetune: { epochs: number; valAcc: number | null; seconds: number } | null;
}

export interface PruneRunResult {
  outDir: string;
  model: string;
  method: PruneMethod;
  /** the architecture written (structured), relative to the registered model as built */
  prunedLayers: PrunedLayers;
  macsBefore: number | null;
  macsAfter: number | null;
  rounds: PruneRound[];
  sparsity: { layers: LayerSparsity[]; total: LayerSparsity; bytes: { dense: number; sparse: number } } | null;
  files: { model: string; report: string };
}

type AnyModule = Module<unknown[], unknown>;

function checkOptions(o: PruneRunOptions): void {
  if (!PRUNE_METHODS.includes(o.method)) throw new PruneError(`--method must be one of ${PRUNE_METHODS.join(', ')}, got '${String(o.method)}'`);
  const frac = (v: number | undefined, what: string): void => {
    if (!(typeof v === 'number' && v > 0 && v < 1)) throw new PruneError(`${what} must be in (0, 1), got ${String(v)}`);
  };
  if (o.method === 'magnitude') {
    frac(o.sparsity, '--sparsity (the fraction of weights set to zero)');
    if (o.targetMacs !== undefined) throw new PruneError('--target-macs is for structured pruning (l1, bn, taylor): magnitude pruning leaves the MACs unchanged; give --sparsity');
  } else {
    frac(o.targetMacs, '--target-macs (the fraction of the MACs to keep)');
    if (o.sparsity !== undefined) throw new PruneError('--sparsity is for --method magnitude');
  }
  const int = (v: number | undefined, min: number, what: string): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new PruneError(`${what} must be an integer >= ${min}, got ${String(v)}`);
  };
  int(o.iterative, 1, '--iterative');
  int(o.finetuneEpochs, 0, '--finetune-epochs');
  int(o.taylorBatches, 1, '--taylor-batches');
  int(o.roundTo, 1, '--round-to');
  if (o.method === 'magnitude' && (o.iterative ?? 1) > 1) throw new PruneError('--iterative is for structured pruning; magnitude pruning follows its gradual schedule over the fine-tuning');
}

/** The training recipe behind a checkpoint (its own, or its run folder's last.safetensors), else null. */
function recipeOf(spec: string): Recipe | null {
  const candidates = fs.statSync(spec).isDirectory() ? [path.join(spec, 'last.safetensors')] : [spec, path.join(path.dirname(spec), 'last.safetensors')];
  for (const f of candidates) {
    if (!fs.existsSync(f)) continue;
    try {
      if (parseSafetensorsHeader(f).metadata?.format !== CHECKPOINT_FORMAT) continue;
      return checkTrainState(f, readCheckpointMeta(f)).recipe;
    } catch {
      continue;
    }
  }
  return null;
}

/** The dataset a model.safetensors names (convkit_dataset), else undefined. */
function datasetOf(file: string | null): string | undefined {
  if (!file) return undefined;
  try {
    return parseSafetensorsHeader(file).metadata?.convkit_dataset;
  } catch {
    return undefined;
  }
}

/** Prunes a checkpoint and writes the pruned run into o.outDir (see the file's comment). */
export async function pruneCheckpoint(spec: string, o: PruneRunOptions): Promise<PruneRunResult> {
  checkOptions(o);
  if (!fs.existsSync(spec)) throw new PruneError(`${spec}: no such checkpoint or run folder`);
  const outDir = path.resolve(o.outDir);
  const holdsRun = ['model.safetensors', 'last.safetensors'].some((f) => fs.existsSync(path.join(outDir, f)));
  if (holdsRun && !o.overwrite) throw new PruneError(`output folder ${outDir} already holds a run; choose another -o or pass overwrite`);
  const log = o.log ?? (() => {});
  const src = loadExportSource(spec, { model: o.model });
  const model = src.model as unknown as AnyModule;
  let createdDir = false;
  const written: string[] = [];
  try {
    const name = src.metadata.modelName!;
    const entry = modelEntry(name);
    if (entry.config.exampleInput && o.method !== 'magnitude') {
      throw new PruneError(`${name} is a sequence model: channel pruning is for convolutional models (magnitude pruning works on its Linear weights)`);
    }
    const options = { ...(src.metadata.modelOptions ?? {}) } as Record<string, unknown>;
    const base = recipeOf(spec);
    const dataset = o.dataset ?? base?.dataset ?? datasetOf(src.weights);
    const epochs = o.finetuneEpochs ?? 0;
    const needsData = epochs > 0 || o.method === 'taylor';
    if (needsData && !dataset) throw new PruneError(`${spec} does not say which data it was trained on: give --dataset (needed for ${o.method === 'taylor' ? 'Taylor importance' : 'fine-tuning'})`);
    const { prunedLayers: _old, ...plainOptions } = options;
    const recipe = resolveRecipe({
      ...(base ?? {}), model: name, ...(dataset ? { dataset } : {}), ...(o.dataRoot ? { dataRoot: o.dataRoot } : {}),
      mean: src.metadata.mean ?? null, std: src.metadata.std ?? null,
      epochs: Math.max(epochs, 1), ...(o.lr !== undefined ? { lr: o.lr } : base ? { lr: base.lr / 10 } : {}), warmupEpochs: 0, freezeBackboneEpochs: 0,
      pretrained: false, replaceHead: false, outDir,
      ...(o.batchSize ? { batchSize: o.batchSize } : {}), ...(o.limitTrain ? { limitTrain: o.limitTrain } : {}), ...(o.limitTest ? { limitTest: o.limitTest } : {}),
      ...(o.recipe ?? {}),
    });
    const taylor = o.method === 'taylor' ? await taylorBatches(recipe, o.taylorBatches ?? 4) : [];
    const rounds: PruneRound[] = [];
    const result: PruneRunResult = {
      outDir, model: name, method: o.method, prunedLayers: (options.prunedLayers as PrunedLayers | undefined) ?? {}, macsBefore: null, macsAfter: null, rounds, sparsity: null,
      files: { model: path.join(outDir, 'model.safetensors'), report: path.join(outDir, 'prune.json') },
    };
    try {
      const mkdir = (): void => {
        if (!fs.existsSync(outDir)) {
          fs.mkdirSync(outDir, { recursive: true });
          createdDir = true;
        }
      };
      if (o.method === 'magnitude') {
        const pruner = epochs === 0 ? new MagnitudePruner(model, { scope: o.scope }) : null;
        if (pruner) {
          pruner.setSparsity(o.sparsity!);
          const r = pruner.report();
          result.sparsity = { ...r, bytes: sparseBytes(r.layers) };
          pruner.dispose();
          mkdir();
          save(model, result.files.model, name, options, recipe, src.metadata.classNames, written);
        } else {
          mkdir();
          const ft = await finetune(model, recipe, { ...options }, epochs, written, o, (t) => {
            const p = new MagnitudePruner(t.model as unknown as AnyModule, { scope: o.scope });
            const total = epochs * t.trainLoader.numBatches;
            // Zhu & Gupta: prune over the first three quarters of the steps, about 20 mask updates, then hold
            const schedule = { final: o.sparsity!, end: Math.max(1, Math.floor(0.75 * total)), every: Math.max(1, Math.floor((0.75 * total) / 20)) };
            const opt = t.optimizer;
            const step = opt.step.bind(opt);
            let n = 0;
            opt.step = () => {
              step();
              n += 1;
              const s = gradualSparsity(n, schedule);
              if (s !== p.sparsity) p.setSparsity(s);
              else p.apply();
            };
            return p;
          });
          const r = ft.pruner!.report();
          result.sparsity = { ...r, bytes: sparseBytes(r.layers) };
          ft.pruner!.dispose();
          rounds.push({ round: 1, targetMacs: 1, structured: null, finetune: ft.summary });
        }
      } else {
        const n = o.iterative ?? 1;
        const baseModel = withDevice('meta', () => createModel(name, plainOptions)) as unknown as AnyModule;
        let macsOrig = 0;
        let macsNow = 0;
        for (let k = 1; k <= n; k++) {
          const target = o.targetMacs! ** (k / n);
          const relative = macsOrig === 0 ? target : Math.min(0.999999, (target * macsOrig) / macsNow);
          const r = pruneChannels(model, src.example, { targetMacs: relative, method: o.method, batches: taylor, roundTo: o.roundTo });
          if (macsOrig === 0) macsOrig = r.macsBefore;
          macsNow = r.macsAfter;
          const layers = diffLayers(model, baseModel);
          result.prunedLayers = layers;
          log(`round ${k}/${n}: ${o.method} pruning to ${(target * 100).toFixed(1)}% of the MACs: ${(r.macsBefore / 1e6).toFixed(2)}M -> ${(r.macsAfter / 1e6).toFixed(2)}M MACs ` +
            `(${(macsNow / macsOrig * 100).toFixed(1)}% of the original), ${r.paramsBefore} -> ${r.paramsAfter} parameters, ${(r.ratio * 100).toFixed(1)}% of each group's channels removed`);
          const { groups, ...rest } = r;
          const round: PruneRound = { round: k, targetMacs: target, structured: { ...rest, groups: groups.length }, finetune: null };
          rounds.push(round);
          mkdir();
          const opts = { ...plainOptions, prunedLayers: layers };
          if (epochs > 0) {
            const dir = k === n ? outDir : path.join(outDir, `round-${k}`);
            round.finetune = (await finetune(model, { ...recipe, outDir: dir }, opts, epochs, written, o)).summary;
          } else if (k === n) save(model, result.files.model, name, opts, recipe, src.metadata.classNames, written);
          if (k === n) options.prunedLayers = layers;
        }
        result.macsBefore = macsOrig;
        result.macsAfter = macsNow;
      }
      writeFileAtomic(result.files.report, `${JSON.stringify(result, null, 2)}\n`);
      return result;
    } catch (e) {
      // nothing half-done is left: the files this call wrote go (and the folder it made)
      if (createdDir) fs.rmSync(outDir, { recursive: true, force: true });
      else for (const f of written) fs.rmSync(f, { recursive: true, force: true });
      throw e;
    } finally {
      for (const b of taylor) {
        b.x.dispose();
        b.y.dispose();
      }
    }
  } finally {
    model.dispose();
    src.example.dispose();
  }
}

/** A few batches of training images, normalised as for evaluation (no augmentation). */
async function taylorBatches(r: Recipe, n: number): Promise<TaylorBatch[]> {
  const data = buildRunData(r, modelEntry(r.model).config);
  const out: TaylorBatch[] = [];
  try {
    const loader = evalLoader(data.train, { ...r, evalBatchSize: Math.min(r.batchSize, 128), prefetch: 0 }, data.mean, data.std);
    for await (const b of loader.batches(0)) {
      out.push({ x: b.x.keep(), y: b.y.keep() });
      if (out.length >= n) break;
    }
  } finally {
    data.dispose();
  }
  if (out.length === 0) throw new PruneError(`${r.dataset}: no training images to score channels on`);
  return out;
}

/** model.safetensors with the metadata the Trainer writes, for a model pruned without fine-tuning. */
function save(model: AnyModule, file: string, name: string, options: Record<string, unknown>, r: Recipe, classes: string[] | undefined, written: string[]): void {
  saveModelWeights(file, model as unknown as Module<never[], unknown>, {
    convkit_model: name,
    convkit_model_options: JSON.stringify(options),
    ...(classes ? { convkit_classes: JSON.stringify(classes) } : {}),
    ...(r.mean && r.std ? { convkit_normalization: JSON.stringify({ mean: r.mean, std: r.std }) } : {}),
    ...(r.dataset ? { convkit_dataset: r.dataset } : {}),
    ...(r.imageSize ? { convkit_image_size: JSON.stringify(r.imageSize) } : {}),
  });
  written.push(file);
}

/**
 * Fine-tunes `model` with the Trainer (a run in r.outDir that starts from its weights, its
 * architecture given by `options`) and copies the result back into it.
 */
async function finetune(model: AnyModule, r: Recipe, options: Record<string, unknown>, epochs: number, written: string[], o: PruneRunOptions,
  attach?: (t: Trainer) => MagnitudePruner): Promise<{ summary: PruneRound['finetune']; pruner: MagnitudePruner | null }> {
  fs.mkdirSync(r.outDir!, { recursive: true });
  const init = path.join(r.outDir!, 'pruned-init.safetensors');
  saveModelWeights(init, model as unknown as Module<never[], unknown>);
  written.push(init);
  for (const f of ['recipe.json', 'log.jsonl', 'last.safetensors', 'best.safetensors', 'model.safetensors', 'report.html']) written.push(path.join(r.outDir!, f));
  const t = Trainer.create({ ...r, modelOptions: options, init, epochs }, { overwrite: true, onEvent: o.onEvent });
  let pruner: MagnitudePruner | null = null;
  try {
    pruner = attach ? attach(t) : null;
    const res: TrainResult = await t.run();
    if (res.interrupted) throw new PruneError(`fine-tuning was interrupted at epoch ${res.epochs}; the partial run is in ${r.outDir}`);
    model.loadStateDict(t.model.stateDict() as Map<string, Tensor>);
    fs.rmSync(init, { force: true });
    // the pruner's masks hold on the trainer's model: report from the copy, which is the same weights
    const p = pruner ? new MagnitudePruner(model) : null;
    pruner?.dispose();
    return { summary: { epochs: res.epochs, valAcc: res.last?.valAcc ?? null, seconds: res.seconds }, pruner: p };
  } finally {
    t.dispose();
  }
}
