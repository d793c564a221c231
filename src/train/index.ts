// Training: optimizers, schedules, EMA, clipping, the Trainer and its recipes, checkpoints,
// metrics, evaluation and the run report.
export * from './optim/index.js';
export * from './schedule.js';
export * from './ema.js';
export * from './clip.js';
export * from './param_groups.js';
export {
  Trainer, finalizeRecipe,
  type TrainState, type TrainerEvent, type TrainerListener, type TrainerOptions, type TrainResult,
} from './trainer.js';
export {
  DEFAULT_RECIPE, RECIPE_KEYS, DATASETS, RecipeError, resolveRecipe, checkRecipe, loadRecipeFile, normalizeAugmentSpec, defaultOutDir,
  type Recipe, type OptimizerName, type ScheduleName, type AugmentSpec,
} from './recipe.js';
export {
  saveCheckpoint, loadCheckpoint, readCheckpointMeta, saveModelWeights,
  CheckpointError, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
  type CheckpointContents, type LoadedCheckpoint,
} from './checkpoint.js';
export { readModelWeights, loadModelWeights, type LoadWeightsOptions, type LoadWeightsReport } from '../models/weights.js';
export {
  RunningMean, ConfusionMatrix, topkCorrect, formatTable, formatClassReport, formatConfusion,
  type ClassMetrics, type ClassReport, type EpochRecord,
} from './metrics.js';
export { evaluate, forward, logitsOf, type ClassifierModule, type EvalOptions, type EvalResult, type Misclassified } from './evaluate.js';
export { distillationLoss, blendDistillation, adaptBatch, checkpointTeacher, type Teacher, type TeacherInput } from './distill.js';
export { probeBf16, type Bf16Probe, type ProbeOptions } from './amp_probe.js';
export { evaluateCheckpoint, openModelFile, type EvalCheckpointOptions, type CheckpointEvaluation, type OpenedModel } from './eval_checkpoint.js';
export {
  buildRunData, openDataset, limitDataset, normalization, trainTransforms, trainLoader, evalLoader, checkTransforms,
  type RunData, type EvalSplit,
} from './data.js';
export {
  buildModel, findHead, buildParamGroups, buildOptimizer, buildSchedule, checkScheduleOptions,
  type BuiltModel, type Head, type GroupSpec,
} from './setup.js';
export { renderReport, type ReportData, type MisclassifiedImage } from './report.js';
export { writeRunReport, type RunReportInput } from './run_report.js';
export { ProgressBar, formatDuration, type ProgressOptions, type ProgressStream } from './progress.js';
export {
  scaleSearch, searchGrid, candidateKey, formatSearchTable,
  type ScaleSearchOptions, type ScaleSearchEvent, type ScaleSearchResult, type ScaleSearchState, type Candidate, type CandidateResult,
} from './scale_search.js';
