// Compression: int8 quantization (calibration, QDQ rewrite, sensitivity scan).
export { quantizeModel, quantizeBatches, quantizationReport, runtimeOps, loadFloatGraph, loadCalibrationImages, calibrate, checkCalibration, compareLogits, QUANTIZED_KEY, type QuantizeOptions, type QuantizeResult, type SensitivityOptions, type SensitivityRow, type CalibrationBatch, type QuantizationReport, type FloatSource } from './quantize.js';
export { CALIB_METHODS, TensorObserver, minmaxRange, percentileRange, mseRange, entropyThreshold, uint8Params, quantizePerChannel, quantizeBias, observedRange, type CalibMethod, type CalibOptions, type Range, type QParams } from './quantize_calib.js';
export { toQdq, skipsFor, weightedNodes, SKIP_RULES, type SkipRule, type QuantizedLayer, type FloatLayer, type QdqOptions, type QdqResult } from './quantize_qdq.js';
export { readOnnxGraph, calibrationModel, type OnnxModel } from './quantize_onnx.js';
