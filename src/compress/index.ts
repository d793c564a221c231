// Compression: quantization, pruning, distillation.
export { pruneChannels, pruneUnits, PruneError, type ChannelPruneOptions, type ChannelPruneResult, type GroupReport } from './prune.js';
export { buildDependencyGraph, type DependencyGraph, type LayerUse, type Unit, type Group } from './prune_graph.js';
export { channelImportance, IMPORTANCE_METHODS, type ImportanceMethod, type TaylorBatch } from './prune_importance.js';
export { MagnitudePruner, gradualSparsity, sparseBytes, type LayerSparsity, type MagnitudePruneOptions, type SparsitySchedule } from './prune_magnitude.js';
export { pruneCheckpoint, PRUNE_METHODS, type PruneMethod, type PruneRunOptions, type PruneRunResult, type PruneRound } from './prune_run.js';
