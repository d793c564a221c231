// The Trainer: runs a recipe's epochs, evaluates, checkpoints, and resumes exactly.
//
// Each step runs in one tidy() scope (forward, loss, backward, clipping, optimizer and schedule
// step, EMA update), so native memory is the same after every step. A run is reproducible from
// its checkpoint alone: the data order and augmentation are pure functions of (seed, epoch,
// batch) (see data/loader.ts), and the checkpoint holds everything else that changes: weights
// and BN statistics, optimizer state, schedule, EMA, libtorch's generator (dropout, drop-path),
// the position (epoch, batch) and the running sums of an interrupted epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { F, FakeQuantObservers, emptyCache, getRngState, manualSeed, noGrad, setNumThreads, setRngState, tensor, tidy, type Tensor } from '../engine/index.js';
import type { DataLoader } from '../data/index.js';
import type { Module, Parameter } from '../nn/index.js';
import { modelEntry } from '../models/index.js';
import type { Optimizer, OptimizerMeta } from './optim/index.js';
import type { Scheduler, SchedulerState } from './schedule.js';
import { ModelEma, type ModelEmaState } from './ema.js';
import { clipGradNorm } from './clip.js';
import {
  loadCheckpoint, readCheckpointMeta, saveCheckpoint, saveModelWeights, CheckpointError,
} from './checkpoint.js';
import { isOnnxFile } from '../io/files.js';
import { copyFileAtomic, removeStaleTempFiles, writeFileAtomic } from '../io/atomic.js';
import { cpuHasBf16 } from '../engine/cpu.js';
import { defaultOutDir, resolveRecipe, RecipeError, type Recipe } from './recipe.js';
import { buildRunData, checkTransforms, evalLoader, trainLoader, trainTransforms, type RunData } from './data.js';
import { buildModel, buildOptimizer, buildParamGroups, buildSchedule, checkScheduleOptions, findHead, type GroupSpec, type Head } from './setup.js';
import { evaluate, forward, logitsOf, type ClassifierModule, type EvalResult } from './evaluate.js';
import { probeBf16, type Bf16Probe } from './amp_probe.js';
import type { EpochRecord } from './metrics.js';
import { writeRunReport } from './run_report.js';
import { adaptBatch, blendDistillation, checkpointTeacher, distillationLoss, type Teacher } from './distill.js';
import { checkTrainState } from './train_state.js';
import { DistributedDataParallel, convertSyncBatchNorm, type DdpOptions, type ProcessGroup } from '../distributed/index.js';

/** The JSON half of a checkpoint (safetensors __metadata__ "convkit"). */
export interface TrainState {
  /** the position of the next batch: epoch (0-based) and batch within it */
  epoch: number;
  batch: number;
  /** optimizer steps taken */
  step: number;
  recipe: Recipe;
  optimizer: OptimizerMeta;
  schedule: SchedulerState;
  ema: ModelEmaState['meta'] | null;
  /** the data order is a pure function of (seed, epoch): nothing else to save for it */
  loader: { seed: number; epoch: number; batch: number; batchSize: number; numBatches: number; trainSize: number };
  /** running sums of the epoch in progress (an interrupted epoch), else null */
  partial: EpochSums | null;
  bestAcc: number;
  bestEpoch: number;
  history: EpochRecord[];
  /** [step, lr] samples for the report */
  lrTrace: [number, number][];
  classes: string[];
  normalization: { mean: number[]; std: number[] };
  finished: boolean;
}

interface EpochSums {
  lossSum: number;
  correct: number;
  seen: number;
  seconds: number;
}

export type TrainerEvent =
  | ({ type: 'bf16Probe' } & Bf16Probe)
  | { type: 'start'; recipe: Recipe; outDir: string; resumed: boolean; epoch: number; batch: number; trainSize: number; evalSize: number; evalSplit: 'val' | 'test'; numParams: number; groups: { label: string; params: number; lr: number; weightDecay: number }[]; worldSize: number }
  | { type: 'epochStart'; epoch: number; epochs: number; startBatch: number; numBatches: number }
  | { type: 'step'; epoch: number; batch: number; numBatches: number; step: number; loss: number; acc: number; lr: number; imagesPerSec: number; teacherMs: number | null }
  | { type: 'evalStart'; epoch: number; what: 'model' | 'ema' }
  | { type: 'epochEnd'; record: EpochRecord; best: boolean }
  | { type: 'checkpoint'; file: string }
  | { type: 'interrupted'; epoch: number; batch: number; file: string }
  | { type: 'end'; result: TrainResult };

export type TrainerListener = (e: TrainerEvent) => void;

export interface TrainerOptions {
  onEvent?: TrainerListener;
  /**
   * Test hook: called after every optimizer step with the position; returning true asks the
   * trainer to stop there as Ctrl-C does.
   */
  stopAfter?: (epoch: number, batch: number) => boolean;
  /** allow writing into an outDir that already holds a run (default false) */
  overwrite?: boolean;
  /**
   * Data-parallel training: this process's group. recipe.batchSize is the global batch (each
   * rank trains on its share), so losses, the learning rate, the schedule and checkpoints are
   * those of one process with the whole batch, and a run resumes on any number of processes.
   * Rank 0 alone evaluates and writes files; the figures of 'step' events are global.
   */
  distributed?: { group: ProcessGroup; ddp?: DdpOptions };
  /**
   * The teacher of recipe.teacher, when the caller builds it (an ONNX model through deploy's
   * onnxTeacher); without it a checkpoint teacher is loaded here. The trainer disposes it.
   */
  teacher?: Teacher;
}

export interface TrainResult {
  outDir: string;
  /** epochs completed */
  epochs: number;
  interrupted: boolean;
  bestAcc: number;
  bestEpoch: number;
  last: EpochRecord | null;
  seconds: number;
  files: { recipe: string; log: string; last: string; best: string; model: string; report: string };
}

const LR_TRACE_POINTS = 400;

export class Trainer {
  readonly recipe: Recipe;
  readonly outDir: string;
  readonly data: RunData;
  readonly model: ClassifierModule;
  readonly head: Head;
  readonly groups: GroupSpec[];
  readonly optimizer: Optimizer;
  readonly scheduler: Scheduler;
  readonly ema: ModelEma | null;
  readonly numClasses: number;
  readonly trainLoader: DataLoader;
  readonly evalLoader: DataLoader;
  history: EpochRecord[] = [];
  step = 0;
  epoch = 0;
  batch = 0;
  bestAcc = -1;
  bestEpoch = 0;
  lrTrace: [number, number][] = [];
  #partial: EpochSums | null = null;
  #lastStepLr = NaN;
  #lastEval: EvalResult | null = null;
  #stop = false;
  #resumed = false;
  /** parameters the model itself keeps fixed (requiresGrad false when built) */
  #fixed = new Set<Parameter>();
  readonly #listeners: TrainerListener[] = [];
  readonly #opts: TrainerOptions;
  readonly #traceEvery: number;
  readonly #teacher: Teacher | null = null;
  /** milliseconds the teacher took this epoch, for the progress line */
  #teacherMs = 0;
  /** the process group of a data-parallel run of 2 or more processes, else null */
  readonly #group: ProcessGroup | null;
  #ddp: DistributedDataParallel | null = null;
  /** quantization-aware training: the fake-quantized inputs' ranges (not checkpointed: a resumed run observes afresh) */
  readonly #fakeQuant: FakeQuantObservers | null;

  private constructor(recipe: Recipe, opts: TrainerOptions, resuming = false) {
    this.#opts = opts;
    if (opts.onEvent) this.#listeners.push(opts.onEvent);
    this.recipe = recipe;
    this.outDir = recipe.outDir!;
    this.#fakeQuant = recipe.qat ? new FakeQuantObservers() : null;
    const group = opts.distributed?.group;
    this.#group = group && group.worldSize > 1 ? group : null;
    if (this.#group && recipe.batchSize < this.#group.worldSize) {
      throw new RecipeError(`recipe: batchSize ${recipe.batchSize} is the global batch and must be at least the number of processes, ${this.#group.worldSize}`);
    }
    if (recipe.threads !== null) setNumThreads(recipe.threads);
    checkScheduleOptions(recipe);
    manualSeed(recipe.seed);
    this.data = buildRunData(recipe, modelEntry(recipe.model).config);
    let built: ClassifierModule | null = null;
    try {
      this.numClasses = checkClasses(recipe, this.data);
      const inChannels = checkChannels(recipe, this.data);
      const specs = trainTransforms(recipe, this.data.mean, this.data.std, this.numClasses);
      checkTransforms(specs);
      built = this.model = buildModel(recipe, this.numClasses, inChannels, { weights: !resuming }).model;
      if (recipe.channelsLast) this.model.to({ memoryFormat: 'channelsLast' });
      if (this.#group && recipe.syncBatchNorm) convertSyncBatchNorm(this.model as Module<unknown[], unknown>, this.#group);
      this.#fixed = new Set(this.model.parameters().filter((p) => !p.requiresGrad));
      this.head = findHead(this.model);
      this.groups = buildParamGroups(this.model, recipe, this.head);
      this.optimizer = buildOptimizer(this.groups, recipe);
      this.trainLoader = trainLoader(this.data, recipe, this.numClasses, this.#group ? { rank: this.#group.rank, worldSize: this.#group.worldSize } : undefined);
      this.evalLoader = evalLoader(this.data.eval, recipe, this.data.mean, this.data.std);
      this.scheduler = buildSchedule(this.optimizer, recipe, this.trainLoader.numBatches);
      this.ema = recipe.ema > 0 ? new ModelEma(this.model as Module<unknown[], unknown>, { decay: recipe.ema }) : null;
      this.#traceEvery = Math.max(1, Math.floor((recipe.epochs * this.trainLoader.numBatches) / LR_TRACE_POINTS));
      this.#teacher = openTeacher(recipe, opts.teacher);
    } catch (e) {
      opts.teacher?.dispose();
      built?.dispose();
      this.data.dispose();
      throw e;
    }
  }

  /**
   * A new run. The recipe is completed with the defaults and checked; 'auto' settings are
   * decided here (bf16 on a CPU with native bf16: by timing, when run() starts), so recipe.json
   * and the checkpoints record what actually ran.
   */
  static create(recipe: Partial<Recipe> = {}, opts: TrainerOptions = {}): Trainer {
    const r = resolveRecipe(recipe);
    finalizeRecipe(r);
    const last = path.join(r.outDir!, 'last.safetensors');
    if (fs.existsSync(last) && !opts.overwrite) {
      throw new RecipeError(`output folder ${r.outDir} already holds a run (${last}); resume it (--resume ${r.outDir}) or choose another --out-dir`);
    }
    return new Trainer(r, opts);
  }

  /** The recipe of the run whose checkpoint is `from` (a file, or a run folder's last.safetensors). */
  static recipeOf(from: string): Recipe {
    const file = resumeFile(from);
    const recipe = resolveRecipe(checkTrainState(file, readCheckpointMeta(file)).recipe);
    recipe.outDir = path.dirname(path.resolve(file));
    return recipe;
  }

  /** Continues the run whose checkpoint is `from` (a file, or a run folder's last.safetensors). */
  static resume(from: string, opts: TrainerOptions = {}): Trainer {
    const file = resumeFile(from);
    const recipe = Trainer.recipeOf(file);
    // in a data-parallel run only rank 0 writes: another rank must not remove its temp files
    if ((opts.distributed?.group.rank ?? 0) === 0) removeStaleTempFiles(recipe.outDir!);
    const t = new Trainer(recipe, opts, true);
    try {
      t.#restore(file);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  on(listener: TrainerListener): void {
    this.#listeners.push(listener);
  }

  /** Asks the run to stop after the current step, with a checkpoint that resumes there. */
  stop(): void {
    this.#stop = true;
  }

  get files(): TrainResult['files'] {
    const f = (n: string): string => path.join(this.outDir, n);
    return { recipe: f('recipe.json'), log: f('log.jsonl'), last: f('last.safetensors'), best: f('best.safetensors'), model: f('model.safetensors'), report: f('report.html') };
  }

  /** Whether this process writes the run's files: rank 0 of a data-parallel run, or the only process. */
  get writesFiles(): boolean {
    return this.#group === null || this.#group.rank === 0;
  }

  #emit(e: TrainerEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /** Runs the remaining epochs. Resolves when done or stopped (result.interrupted). */
  async run(): Promise<TrainResult> {
    const t0 = performance.now();
    if (this.#teacher) await checkTeacherClasses(this.#teacher, this.numClasses);
    if (this.writesFiles) fs.mkdirSync(this.outDir, { recursive: true });
    if (this.recipe.bf16 === 'auto') await this.#chooseBf16();
    if (this.#group) {
      // every rank must run the same precision: rank 0's timing decides
      const [bf16] = this.#broadcastNumbers([this.recipe.bf16 === true ? 1 : 0]);
      this.recipe.bf16 = bf16 === 1;
    }
    if (this.writesFiles) {
      writeFileAtomic(this.files.recipe, `${JSON.stringify(this.recipe, null, 2)}\n`);
      this.#writeLog();
    }
    this.#emit({
      type: 'start', recipe: this.recipe, outDir: this.outDir, resumed: this.#resumed, epoch: this.epoch, batch: this.batch,
      trainSize: this.data.train.length, evalSize: this.data.eval.length, evalSplit: this.data.evalSplit, numParams: this.model.numParameters(),
      groups: this.groups.map((g) => ({ label: g.label, params: g.params.reduce((n, p) => n + p.numel(), 0), lr: g.lr, weightDecay: g.weightDecay })),
      worldSize: this.#group?.worldSize ?? 1,
    });
    // a fresh run (not resumed, no init weights) lets the model set data-dependent weights first
    if (!this.#resumed && this.step === 0 && !this.recipe.init && !this.recipe.pretrained) await initFromData(this.model, this.data, this.recipe);
    // rank 0's weights and buffers on every rank; gradients averaged from here on
    if (this.#group && !this.#ddp) this.#ddp = new DistributedDataParallel(this.model as Module<unknown[], unknown>, this.#group, this.#opts.distributed?.ddp);
    let interrupted = false;
    while (this.epoch < this.recipe.epochs) {
      const sums = await this.#trainEpoch();
      if (sums === null) {
        interrupted = true;
        break;
      }
      await this.#endEpoch(sums);
      // a Ctrl-C seen by one rank only stops all of them, at the same place
      if (this.#group) this.#stop = this.#agree(this.#stop ? 1 : 0)[0] > 0;
      if (this.#stop && this.epoch < this.recipe.epochs) {
        this.#emit({ type: 'interrupted', epoch: this.epoch, batch: 0, file: this.files.last });
        interrupted = true;
        break;
      }
    }
    if (!interrupted) this.#finish();
    const result: TrainResult = {
      outDir: this.outDir, epochs: this.epoch, interrupted, bestAcc: this.bestAcc, bestEpoch: this.bestEpoch,
      last: this.history.at(-1) ?? null, seconds: (performance.now() - t0) / 1000, files: this.files,
    };
    this.#emit({ type: 'end', result });
    return result;
  }

  // ---- one epoch ------------------------------------------------------------------------------

  /** Trains from the current position to the epoch's end; null when stopped part-way. */
  async #trainEpoch(): Promise<EpochSums | null> {
    const e = this.epoch;
    const numBatches = this.trainLoader.numBatches;
    this.#setTrainMode(e);
    const sums: EpochSums = this.#partial ?? { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
    this.#partial = null;
    this.#emit({ type: 'epochStart', epoch: e, epochs: this.recipe.epochs, startBatch: this.batch, numBatches });
    let t = performance.now();
    this.#teacherMs = 0;
    const startBatch = this.batch;
    for await (const b of this.trainLoader.batches(e, this.batch)) {
      let n = b.padding ? 0 : b.x.size(0);
      // each rank's mean loss weighs its share of the global batch: the averaged gradient is the
      // gradient of the global batch's mean loss, whatever the split
      const weight = this.#group ? (n * this.#group.worldSize) / (b.globalSize ?? n) : 1;
      const soft = this.#teacher ? await this.#teacherLogits(b.x) : null;
      let { loss, correct } = this.#trainStep(b.x, b.y, weight, soft);
      if (b.padding) correct = 0;
      if (this.#opts.stopAfter?.(e, b.index + 1)) this.#stop = true;
      if (this.#group) {
        const [lossSum, c, seen, stop] = this.#agree(loss * n, correct, n, this.#stop ? 1 : 0);
        loss = lossSum / Math.max(seen, 1);
        correct = c;
        n = seen;
        this.#stop = stop > 0;
      }
      const agreedStop = this.#stop;
      sums.lossSum += loss * n;
      sums.correct += correct;
      sums.seen += n;
      const now = performance.now();
      sums.seconds += (now - t) / 1000;
      t = now;
      this.batch = b.index + 1;
      if (this.step % this.#traceEvery === 0 || this.step === 1) this.lrTrace.push([this.step, this.#lastStepLr]);
      this.#emit({
        type: 'step', epoch: e, batch: this.batch, numBatches, step: this.step, loss: sums.lossSum / sums.seen,
        acc: sums.correct / sums.seen, lr: this.#lastStepLr, imagesPerSec: sums.seen / Math.max(sums.seconds, 1e-9),
        teacherMs: this.#teacher ? this.#teacherMs / (this.batch - startBatch) : null,
      });
      // let signal handlers (Ctrl-C) run: an in-memory dataset never yields to the event loop
      await new Promise<void>((resolve) => setImmediate(resolve));
      // ranks stop where they agreed to; a Ctrl-C during the wait above is agreed on next step
      if ((this.#group ? agreedStop : this.#stop) && this.batch < numBatches) {
        this.#partial = sums;
        if (this.writesFiles) this.#saveCheckpoint(this.files.last);
        this.#emit({ type: 'interrupted', epoch: e, batch: this.batch, file: this.files.last });
        return null;
      }
      t = performance.now();
    }
    return sums;
  }

  /** Sums numbers over the ranks (float64: counts stay exact); blocks until every rank is there. */
  #agree(...values: number[]): number[] {
    return this.#collective(values, (t) => this.#group!.allReduce(t).waitSync());
  }

  /** Rank 0's numbers on every rank. */
  #broadcastNumbers(values: number[]): number[] {
    return this.#collective(values, (t) => this.#group!.broadcast(t, 0).waitSync());
  }

  #collective(values: number[], run: (t: Tensor) => void): number[] {
    const t = tensor(values, { dtype: 'float64' });
    try {
      run(t);
      return Array.from(t.toTypedArray() as Float64Array);
    } finally {
      t.dispose();
    }
  }

  /** bf16 'auto' on a CPU with native bf16: times both precisions on a batch of training images. */
  async #chooseBf16(): Promise<void> {
    const r = this.recipe;
    const loader = evalLoader(this.data.train, { ...r, evalBatchSize: r.batchSize, prefetch: 0 }, this.data.mean, this.data.std);
    for await (const batch of loader.batches(0)) {
      try {
        const p = probeBf16(this.model, batch.x, batch.y, { channelsLast: r.channelsLast as boolean });
        r.bf16 = p.bf16;
        this.#emit({ type: 'bf16Probe', ...p });
      } finally {
        batch.x.dispose();
        batch.y.dispose();
      }
      break;
    }
    if (r.bf16 === 'auto') r.bf16 = false; // an empty training set: nothing to time
    // the probe cached blocks of both precisions; training reuses only one kind (peak RSS 1125 MB, not 845)
    emptyCache();
  }

  /** The learning rate the next step will use (the head's group). */
  get currentLr(): number {
    const g = this.optimizer.paramGroups.at(-1);
    return g ? g.lr : NaN;
  }

  /** The learning rate the last step used (what logs and curves show). */
  get lastStepLr(): number {
    return this.#lastStepLr;
  }

  /** The teacher's logits for the student's batch (timed); the trainer's step owns and disposes them. */
  async #teacherLogits(x: Tensor): Promise<Tensor> {
    const t0 = performance.now();
    const teacher = this.#teacher!;
    const input = adaptBatch(x, this.data, teacher.input, teacher.source);
    try {
      return await teacher.logits(input);
    } finally {
      if (input !== x) input.dispose();
      this.#teacherMs += performance.now() - t0;
    }
  }

  /**
   * weight: the factor of this rank's loss in a data-parallel run (1 otherwise); teacher: the
   * teacher's logits for this batch (distillation), disposed here
   */
  #trainStep(x: Tensor, y: Tensor, weight = 1, teacher: Tensor | null = null): { loss: number; correct: number } {
    const r = this.recipe;
    try {
      return tidy(() => {
        this.#ddp?.beforeForward();
        const out = forward(this.model, x, { bf16: r.bf16 as boolean, channelsLast: r.channelsLast as boolean, fakeQuant: this.#fakeQuant });
        const outs = Array.isArray(out) ? out : [out];
        const soft = y.ndim === 2;
        const ce = (logits: Tensor): Tensor => F.crossEntropy(logits.float(), y, { labelSmoothing: soft ? 0 : r.labelSmoothing });
        let loss = ce(outs[0]);
        // auxiliary classifiers (Inception) weigh 0.4, as torchvision's reference recipe
        for (const aux of outs.slice(1)) loss = loss.add(ce(aux).mul(0.4));
        if (teacher) loss = blendDistillation(loss, distillationLoss(outs[0], teacher, r.distillTemperature), r.distillAlpha);
        this.optimizer.zeroGrad();
        if (this.#ddp) this.#ddp.backward(weight === 1 ? loss : loss.mul(weight));
        else loss.backward();
        if (r.clipGradNorm > 0) clipGradNorm(this.model.parameters(), r.clipGradNorm);
        this.#lastStepLr = this.currentLr;
        this.optimizer.step();
        this.scheduler.step();
        this.step += 1;
        this.ema?.update(this.model as Module<unknown[], unknown>, this.step);
        const correct = noGrad(() => outs[0].argmax(1).eq(soft ? y.argmax(1) : y).sum().item());
        const value = loss.item();
        if (!Number.isFinite(value)) throw new Error(`the training loss is ${value} at epoch ${this.epoch + 1}, step ${this.step}: lower the learning rate (--lr) or clip gradients (--clip-grad)`);
        return { loss: value, correct };
      });
    } finally {
      x.dispose();
      y.dispose();
      teacher?.dispose();
    }
  }

  /** train() for the epoch, with a frozen backbone (no grads, BN statistics fixed) while asked. */
  #setTrainMode(epoch: number): void {
    const frozen = epoch < this.recipe.freezeBackboneEpochs;
    this.model.train();
    for (const p of this.model.parameters()) p.requiresGrad = !this.#fixed.has(p) && (!frozen || this.head.params.has(p));
    if (!frozen) return;
    const headPrefix = this.head.name;
    for (const [name, m] of this.model.namedModules()) {
      const inHead = headPrefix !== '' && (name === headPrefix || name.startsWith(`${headPrefix}.`));
      const holdsHead = headPrefix === '' || headPrefix.startsWith(`${name}.`) || name === '';
      if (!inHead && !holdsHead) m.training = false;
    }
  }

  async #endEpoch(sums: EpochSums): Promise<void> {
    const r = this.recipe;
    const e = this.epoch;
    if (!this.writesFiles) {
      // rank 0 evaluates and writes; the others wait for it in the epoch's closing agreement
      // (within the collective timeout, --dist-timeout)
      this.epoch = e + 1;
      this.batch = 0;
      return;
    }
    // test-time augmentation multiplies an evaluation's cost, so it is kept for the final one (as
    // timm's validate --tta): the per-epoch curve is plain, the run's final accuracy is with TTA
    const final = e + 1 === r.epochs;
    const flip = r.evalFlip && final;
    const translate = final ? r.evalTranslate : 0;
    const amp = { bf16: r.bf16 as boolean, channelsLast: r.channelsLast as boolean, flip, translate, fakeQuant: this.#fakeQuant };
    this.#emit({ type: 'evalStart', epoch: e, what: 'model' });
    const ev = await evaluate(this.model, this.evalLoader, { numClasses: this.numClasses, ...amp, maxMisclassified: r.reportImages });
    let emaEv: EvalResult | null = null;
    if (this.ema) {
      this.#emit({ type: 'evalStart', epoch: e, what: 'ema' });
      emaEv = await this.ema.withWeights(this.model as Module<unknown[], unknown>, () => evaluate(this.model, this.evalLoader, { numClasses: this.numClasses, ...amp }));
    }
    this.#lastEval = ev;
    const mem = process.memoryUsage().rss / 1e6;
    const record: EpochRecord = {
      epoch: e + 1, step: this.step, trainLoss: sums.lossSum / sums.seen, trainAcc: sums.correct / sums.seen, evalSplit: this.data.evalSplit,
      valLoss: ev.loss, valAcc: ev.top1, valTop5: ev.top5, emaAcc: emaEv?.top1 ?? null, emaLoss: emaEv?.loss ?? null,
      lr: this.#lastStepLr, imagesPerSec: sums.seen / Math.max(sums.seconds, 1e-9), epochSeconds: sums.seconds,
      rssMB: mem, peakRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6, evalFlip: flip, evalTranslate: translate,
    };
    this.history.push(record);
    const best = ev.top1 > this.bestAcc;
    if (best) {
      this.bestAcc = ev.top1;
      this.bestEpoch = e + 1;
    }
    this.epoch = e + 1;
    this.batch = 0;
    this.#saveCheckpoint(this.files.last);
    if (best) copyFileAtomic(this.files.last, this.files.best);
    saveModelWeights(this.files.model, this.model.stateDict(), this.modelMetadata());
    this.#writeLog();
    await this.#writeReport();
    this.#emit({ type: 'epochEnd', record, best });
  }

  #finish(): void {
    // mark the run finished in last.safetensors, so a resume has nothing left to do
    if (this.writesFiles && this.history.length > 0) this.#saveCheckpoint(this.files.last, true);
  }

  // ---- files ------------------------------------------------------------------------------------

  /** Metadata of model.safetensors: enough for `convkit eval` to rebuild the model and its input. */
  modelMetadata(): Record<string, string> {
    const r = this.recipe;
    return {
      convkit_model: r.model,
      convkit_model_options: JSON.stringify({ ...r.modelOptions, numClasses: this.numClasses, inChannels: this.data.inputShape[0] }),
      convkit_classes: JSON.stringify(this.data.classes),
      convkit_normalization: JSON.stringify({ mean: this.data.mean, std: this.data.std }),
      convkit_dataset: r.dataset,
      // how the run evaluated: bf16 rounds differently, so eval repeats it to print the same figure
      convkit_precision: JSON.stringify({ bf16: r.bf16 === true, channelsLast: r.channelsLast === true }),
      // the resolution the run fed the model (--image-size), which eval repeats
      ...(r.imageSize ? { convkit_image_size: JSON.stringify(r.imageSize) } : {}),
    };
  }

  #state(finished: boolean): TrainState {
    const loaderInfo = { seed: this.recipe.seed, epoch: this.epoch, batch: this.batch, batchSize: this.recipe.batchSize, numBatches: this.trainLoader.numBatches, trainSize: this.data.train.length };
    return {
      epoch: this.epoch, batch: this.batch, step: this.step, recipe: this.recipe,
      optimizer: this.optimizer.stateDict().meta, schedule: this.scheduler.stateDict(), ema: this.ema?.stateDict().meta ?? null,
      loader: loaderInfo, partial: this.#partial, bestAcc: this.bestAcc, bestEpoch: this.bestEpoch, history: this.history,
      lrTrace: this.lrTrace, classes: this.data.classes, normalization: { mean: this.data.mean, std: this.data.std }, finished,
    };
  }

  #saveCheckpoint(file: string, finished = false): void {
    const rng = getRngState();
    try {
      saveCheckpoint(file, {
        model: this.model.stateDict(), optimizer: this.optimizer.stateDict().tensors, ema: this.ema?.tensors ?? null, rng, meta: this.#state(finished),
      });
    } finally {
      rng.dispose();
    }
    this.#emit({ type: 'checkpoint', file });
  }

  #restore(file: string): void {
    const ck = loadCheckpoint(file);
    try {
      const m = checkTrainState(file, ck.meta);
      const part = (what: string, load: () => void): void => {
        try {
          load();
        } catch (e) {
          throw new CheckpointError(file, `${what}: ${(e as Error).message}`, { cause: e });
        }
      };
      part(`its model.* tensors do not fit ${this.recipe.model}`, () => this.model.loadStateDict(ck.model));
      part('training state field "optimizer" and its optim.* tensors', () => this.optimizer.loadStateDict({ tensors: ck.optimizer, meta: m.optimizer }));
      part('training state field "schedule"', () => this.scheduler.loadStateDict(m.schedule));
      if (this.ema) {
        if (!ck.ema || !m.ema) throw new CheckpointError(file, 'the recipe has EMA on but the checkpoint holds no ema.* tensors');
        const ema = { tensors: ck.ema, meta: m.ema };
        part('training state field "ema" and its ema.* tensors', () => this.ema!.loadStateDict(ema));
      }
      if (ck.rng) part('its rng.torch tensor', () => setRngState(ck.rng!));
      if (m.loader.batchSize !== this.recipe.batchSize || m.loader.trainSize !== this.data.train.length) {
        throw new CheckpointError(file, `the training set changed: the checkpoint was made with ${m.loader.trainSize} images in batches of ${m.loader.batchSize}, now ${this.data.train.length} in batches of ${this.recipe.batchSize}`);
      }
      this.epoch = m.epoch;
      this.batch = m.batch;
      this.step = m.step;
      this.bestAcc = m.bestAcc;
      this.bestEpoch = m.bestEpoch;
      this.history = m.history;
      this.lrTrace = m.lrTrace;
      this.#partial = m.partial;
      this.#resumed = true;
    } finally {
      ck.dispose();
    }
  }

  #writeLog(): void {
    writeFileAtomic(this.files.log, this.history.map((h) => JSON.stringify(h)).join('\n') + (this.history.length ? '\n' : ''));
  }

  async #writeReport(): Promise<void> {
    if (!this.#lastEval) return;
    await writeRunReport(this.files.report, {
      recipe: this.recipe, history: this.history, lrTrace: this.lrTrace, classes: this.data.classes, evalSet: this.data.eval,
      evalResult: this.#lastEval, bestAcc: this.bestAcc, bestEpoch: this.bestEpoch, numParams: this.model.numParameters(),
      explain: { model: this.model, transform: this.evalLoader.transform },
    });
  }

  /** Frees the model, optimizer state, EMA and datasets. */
  dispose(): void {
    this.#ddp?.dispose();
    this.optimizer?.dispose();
    this.ema?.dispose();
    this.model?.dispose();
    this.#teacher?.dispose();
    this.data.dispose();
  }
}

/** How many training images a model's data-dependent initialisation sees (airbench uses 5000). */
const DATA_INIT_IMAGES = 5000;

/**
 * Models that set weights from data before training (airbench's whitening) get the first
 * training images, transformed as for evaluation (normalised, no random augmentation).
 */
async function initFromData(model: ClassifierModule, data: RunData, r: Recipe): Promise<void> {
  const m = model as ClassifierModule & { initFromData?: (images: Tensor) => void };
  if (typeof m.initFromData !== 'function') return;
  const n = Math.min(DATA_INIT_IMAGES, data.train.length);
  const loader = evalLoader(data.train, { ...r, evalBatchSize: n, prefetch: 0 }, data.mean, data.std);
  for await (const batch of loader.batches(0)) {
    try {
      m.initFromData(batch.x);
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
    break;
  }
  // the patches of 5000 images are a few hundred MB the training steps would never reuse
  emptyCache();
}

/** Decides 'auto' settings (but bf16 where the CPU has it natively) and the output folder, in place. */
export function finalizeRecipe(r: Recipe): void {
  // where bf16 is native, whether it pays depends on the model: run() times both (amp_probe.ts)
  if (r.bf16 === 'auto' && !cpuHasBf16()) r.bf16 = false;
  if (r.qat) {
    if (r.bf16 === true) throw new RecipeError('recipe: qat rounds float32 values onto the int8 grid; it cannot run with bf16 true (use bf16 false or auto)');
    r.bf16 = false;
  }
  // channels-last pays on CPUs in fp32 too (oneDNN's native layout: no reorder around each
  // convolution): EfficientNet-B0 trains 1.6x faster with it on an AVX2 machine, ResNet-20 1.06-1.14x
  r.channelsLast = r.channelsLast === 'auto' ? true : r.channelsLast;
  r.outDir ??= defaultOutDir(r);
}

function checkClasses(r: Recipe, d: RunData): number {
  const n = d.classes.length;
  if (r.numClasses !== null && r.numClasses < n) {
    throw new RecipeError(`recipe: numClasses is ${r.numClasses} but ${r.dataset} has ${n} classes`);
  }
  return r.numClasses ?? n;
}

function checkChannels(r: Recipe, d: RunData): number {
  const c = d.inputShape[0];
  if (r.inChannels !== null && r.inChannels !== c) {
    throw new RecipeError(`recipe: inChannels is ${r.inChannels} but ${r.dataset} images have ${c} channel${c === 1 ? '' : 's'}`);
  }
  return c;
}

function resumeFile(from: string): string {
  const file = fs.existsSync(from) && fs.statSync(from).isDirectory() ? path.join(from, 'last.safetensors') : from;
  if (!fs.existsSync(file)) throw new CheckpointError(file, 'no such file: nothing to resume');
  return file;
}

/** The run's teacher: the one given, or recipe.teacher loaded as a checkpoint. */
function openTeacher(r: Recipe, given: Teacher | undefined): Teacher | null {
  if (given || !r.teacher) return given ?? null;
  if (isOnnxFile(r.teacher)) {
    throw new RecipeError(`recipe: teacher ${r.teacher} is an ONNX model: pass it as TrainerOptions.teacher (deploy's onnxTeacher), as convkit train --teacher does`);
  }
  // getters: bf16 'auto' is decided when the run starts
  return checkpointTeacher(r.teacher, { get bf16() { return r.bf16 === true; }, get channelsLast() { return r.channelsLast === true; } });
}

/** A teacher of another class count fails before anything is trained or written. */
async function checkTeacherClasses(teacher: Teacher, numClasses: number): Promise<void> {
  const { channels, size } = teacher.input;
  const blank = tensor(new Float32Array(channels * size[0] * size[1]), { shape: [1, channels, size[0], size[1]] });
  const logits = await teacher.logits(blank);
  const found = logits.ndim === 2 ? logits.size(1) : -1;
  const shape = logits.shape;
  blank.dispose();
  logits.dispose();
  if (found !== numClasses) throw new RecipeError(`teacher ${teacher.source} gives logits of shape [${shape}], the student has ${numClasses} classes`);
}
