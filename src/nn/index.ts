// The nn core: Module, Parameter, layers and initialisers, with PyTorch's names.
export { Module, Parameter, describeLoad, type ForwardHook, type ForwardReplaceHook, type LoadOptions, type LoadResult } from './module.js';
export { Sequential, ModuleList, ModuleDict, chain, release, addShortcut, type Layer, type Step } from './container.js';
export { Conv2d, Conv1d, resetConvLike, type Conv2dOptions } from './conv.js';
export { Linear, Embedding, Identity, Flatten } from './linear.js';
export { BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, type BatchNormOptions } from './norm.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d } from './pool.js';
export { ReLU, ReLU6, SiLU, Sigmoid, Tanh, Hardswish, Hardsigmoid, Mish, LeakyReLU, ELU, GELU, Softmax, LogSoftmax } from './activation.js';
export { ZeroPadChannels } from './pad.js';
export { withModulePaths } from './scope.js';
export { Dropout, Dropout2d, StochasticDepth, stochasticDepth } from './dropout.js';
export * as init from './init.js';
export { RNN, LSTM, GRU, type RNNOptions } from './recurrent.js';
export {
  MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, generateSquareSubsequentMask,
  type MultiheadAttentionOptions, type AttentionCallOptions, type TransformerEncoderLayerOptions, type EncoderCallOptions, type Activation,
} from './transformer.js';
