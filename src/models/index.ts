// The model zoo: importing this module registers every family's models (each family file calls
// registerModel at import time) and re-exports the registry and each family's public builders.
export * from './registry.js';
export * from './resnet.js';
export * from './cifar_resnet.js';
export * from './efficientnet.js';
export * from './mobilenet.js';
export * from './scaling.js';
export * from './inception.js';
export * from './sequence.js';
export * from './airbench.js';
export * from './weights.js';
export * from './pretrained.js';
export { TORCHVISION_VERSION } from './pretrained_data.js';
export { applyPrunedLayers, checkPrunedLayers, diffLayers, layerSizes, type PrunedLayers } from './pruned.js';
