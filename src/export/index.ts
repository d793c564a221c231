// ONNX export: trace a model's eval forward, lower it to ONNX operators, clean and write it.
export { exportOnnx, traceGraph, metadataEntries, DEFAULT_OPSET, SUPPORTED_OPSETS, type ExportOptions, type ExportMetadata, type ExportResult } from './export.js';
export { ExportError } from './lower.js';
export { encodeModel, readModelInfo, readOnnxMetadata, type ModelInfo } from './onnx.js';
export { optimize, foldBatchNorm, flattenConcats, composeTransposes, removeDead, removeIdentities, dedupeConstants } from './passes.js';
export * from './graph.js';
export { loadExportSource, type ExportSource, type ExportSourceOptions } from './source.js';
export { ortSessionOptions } from './session_options.js';
