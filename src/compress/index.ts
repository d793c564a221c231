// Compression: int8 quantization (calibration, QDQ rewrite, sensitivity scan) and pruning
// (dependency groups, importance, smaller layers, magnitude masks). Distillation is training's.
export { quantizeModel, quantizeBatches, quantizationReport, runtimeOps, loadFloatGraph, loadCalibrationImages, calibrate, checkCalibration, compareLogits, QUANTIZED_KEY, type QuantizeOptions, type QuantizeResult, type SensitivityOptions, type SensitivityRow, type CalibrationBatch, type QuantizationReport, type FloatSource } from './quantize.js';
export { CALIB_METHODS, TensorObserver, minmaxRange, percentileRange, mseRange, entropyThreshold, uint8Params, quantizePerChannel, quantizeBias, observedRange, type CalibMethod, type CalibOptions, type Range, type QParams } from './quantize_calib.js';
export { toQdq, skipsFor, weightedNodes, SKIP_RULES, type SkipRule, type QuantizedLayer, type FloatLayer, type QdqOptions, type QdqResult } from './quantize_qdq.js';
export { readOnnxGraph, calibrationModel, type OnnxModel } from './quantize_onnx.js';
export { pruneChannels, pruneUnits, PruneError, type ChannelPruneOptions, type ChannelPruneResult, type GroupReport } from './prune.js';
export { buildDependencyGraph, type DependencyGraph, type LayerUse, type Unit, type Group } from './prune_graph.js';
export { channelImportance, IMPORTANCE_METHODS, type ImportanceMethod, type TaylorBatch } from './prune_importance.js';
export { MagnitudePruner, gradualSparsity, sparseBytes, type LayerSparsity, type MagnitudePruneOptions, type SparsitySchedule } from './prune_magnitude.js';
export { pruneCheckpoint, PRUNE_METHODS, type PruneMethod, type PruneRunOptions, type PruneRunResult, type PruneRound } from './prune_run.js';
