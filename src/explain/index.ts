// Explanations of a classifier's decisions: Grad-CAM, Grad-CAM++, Integrated Gradients and
// occlusion sensitivity, and their maps written as images.
export { ExplainError, forwardWithCapture, findModule, withExplainMode, type ExplainModel, type CaptureResult } from './target.js';
export { chooseClasses } from './classes.js';
export { gradCam, camWeights, type CamMethod, type CamOptions, type CamResult } from './cam.js';
export { integratedGradients, type IntegratedGradientsOptions, type IntegratedGradientsResult } from './integrated_gradients.js';
export { occlusion, windowStarts, type OcclusionOptions, type OcclusionResult } from './occlusion.js';
export { explain, EXPLAIN_METHODS, type ExplainMethod, type ExplainOptions, type Explanation } from './explain.js';
export { normalizeMap, jet, colorize, grayscale, overlay } from './heatmap.js';
export { explainImages, collectInputs, type ExplainFilesOptions, type ExplainIndex, type ExplainedImage } from './files.js';
