// Serving: the Open Inference Protocol (KServe v2) over HTTP with dynamic batching, an image
// endpoint, metrics and limits, over ONNX Runtime in worker threads.
export { startServer, type ServeOptions, type InferenceServer, type ServedModelInfo } from './server.js';
export { loadModelBytes, defaultModelName, MODEL_NAME, type ModelSource, type ModelBytes } from './models.js';
export { Batcher, BatchError, type BatcherOptions, type BatchRunner, type BatchResult } from './batcher.js';
export { parseInferRequest, inferResponse, modelMetadata, ProtocolError, type ModelSignature, type ParsedInfer, type TensorMetadata } from './protocol.js';
export { createMetrics, BATCH_BUCKETS, type ServeMetrics } from './metrics.js';
export { bearerCheck } from './auth.js';
