// The engine: tensors, autograd, memory scopes and the functional ops, over libtorch.
export { Tensor, isTensor, type StateDict, type MemoryFormat, type NestedArray, type Scalar, type TensorOrScalar } from './tensor.js';
export { DTYPES, BYTES_PER_ELEMENT, isFloating, type DType, type TypedArray } from './dtype.js';
export * from './create.js';
export { withDevice, defaultDevice } from './device.js';
export { tidy, dispose } from './scope.js';
export { noGrad, enableGrad, isGradEnabled, autocast } from './autograd.js';
export * from './runtime.js';
export { profile } from './profile.js';
export { FusedConv, fusedConvCalls, setFusedInference, fusedInferenceActive, type FusedActivation, type FusedConvSpec, type FusedConvSources } from './fused.js';
export { cpuFlags, cpuHasBf16 } from './cpu.js';
export { fakeQuant, FakeQuantObservers } from './fake_quant.js';
export { uint8Params } from './quant_grid.js';
export * as F from './functional.js';
