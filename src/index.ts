// convkit: convolutional networks for TypeScript on libtorch. The main entry re-exports every
// layer: the engine (tensors, autograd, F), nn (modules and layers), io (file formats), models
// (the zoo and its registry), data (datasets, transforms, the loader), train (optimizers,
// schedules, the Trainer, checkpoints, metrics) and analyze (parameters, MACs, summaries).
export * from './engine/index.js';
export * from './nn/index.js';
export * from './io/index.js';
export * from './models/index.js';
export * from './data/index.js';
export * from './train/index.js';
export * from './analyze/macs.js';
export * from './analyze/summary.js';
