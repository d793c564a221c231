// Optimizers with torch.optim's semantics and names, each step done with multi-tensor calls.
export {
  Optimizer, type GroupOptions, type ScheduleFields, type ParamGroup, type ParamGroupInput, type ParamsInput,
  type OptimizerState, type OptimizerMeta, type ParamState,
} from './optimizer.js';
export { SGD, type SGDOptions, type SGDGroup } from './sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamGroup } from './adam.js';
export { RMSprop, type RMSpropOptions, type RMSpropGroup } from './rmsprop.js';
