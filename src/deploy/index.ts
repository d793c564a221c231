// Deployment: a model run by ONNX Runtime (an exported file, or a checkpoint exported in memory)
// or by libtorch (a checkpoint), behind one predictor, its preprocessing from the model's metadata.
export { predictorInfo, topK, type Predictor, type PredictorInfo, type Prediction, type PredictOptions, type EngineName, type EngineChoice, type Precision } from './predictor.js';
export { loadPredictor, isOnnxFile, ENGINES, type LoadPredictorOptions } from './load.js';
export { predictFiles, decodePlan, decodeImageForModel, type FilePrediction, type PredictFilesOptions } from './files.js';
export { imagePaths, globToRegExp } from './inputs.js';
export { evaluateOnnx, type OnnxEvalOptions, type OnnxEvaluation } from './eval_onnx.js';
export { onnxTeacher } from './teacher.js';
