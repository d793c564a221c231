// Deployment: exported models run by ONNX Runtime, with their preprocessing from the file.
export { loadPredictor, predictorInfo, topK, type Predictor, type PredictorInfo, type Prediction, type PredictOptions, type LoadPredictorOptions } from './predictor.js';
