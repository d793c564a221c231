// Multiply-accumulates of a forward pass, measured rather than derived: forward hooks on every
// convolution and linear layer read the real output shapes of one pass, so any architecture
// (and any input size) is counted by the same rule. FLOPs are about 2 x MACs.
import { isTensor, noGrad, tidy, withDevice, zeros, type DType, type Tensor } from '../engine/index.js';
import { Conv1d, Conv2d, GRU, LSTM, Linear, MultiheadAttention, RNN, type Module } from '../nn/index.js';

export interface LayerMacs {
  /** the layer's dotted name in the model */
  name: string;
  type: string;
  macs: number;
  outputShape: number[];
}

export interface MacsReport {
  /** over the whole input batch */
  total: number;
  /** in call order; a layer called twice appears twice */
  layers: LayerMacs[];
}

/** The layers whose multiply-adds are counted; everything else is elementwise or a container. */
const COUNTED = [Conv1d, Conv2d, Linear, RNN, LSTM, GRU, MultiheadAttention];

export const countsMacs = (m: Module<unknown[], unknown>): boolean => COUNTED.some((c) => m instanceof c);

/**
 * MACs of one call of a layer, its own work only (a MultiheadAttention's out_proj is a Linear,
 * counted as such): conv = output elements x (in_channels / groups) x kernel area; linear =
 * output elements x in_features; recurrent = steps x the weight matrices' elements (each step
 * multiplies every w_ih and w_hh once); attention = the in-projections plus QK^T and AV.
 * Other layers count zero.
 */
export function layerMacs(m: Module<unknown[], unknown>, inputs: unknown[], output: unknown): number {
  const out = firstTensor(output);
  if (!out) return 0;
  if (m instanceof Conv2d || m instanceof Conv1d) {
    const [, inPerGroup, ...kernel] = m.weight.shape;
    return out.numel() * inPerGroup * kernel.reduce((a, b) => a * b, 1);
  }
  if (m instanceof Linear) return out.numel() * m.inFeatures;
  if (m instanceof RNN || m instanceof LSTM || m instanceof GRU) {
    const steps = out.numel() / (m.hiddenSize * m.numDirections);
    return steps * m.flatWeights().filter((w) => w.ndim === 2).reduce((n, w) => n + w.numel(), 0);
  }
  if (m instanceof MultiheadAttention) {
    const [q, k] = inputs as Tensor[];
    const batch = q.ndim === 3 ? q.size(m.batchFirst ? 0 : 1) : 1;
    const lq = q.numel() / (batch * m.embedDim);
    const lk = k.numel() / (batch * m.kdim);
    const E = m.embedDim;
    return batch * (lq * E * E + lk * E * (m.kdim + m.vdim) + 2 * lq * lk * E);
  }
  return 0;
}

function firstTensor(x: unknown): Tensor | null {
  if (isTensor(x)) return x;
  return Array.isArray(x) && x.length > 0 ? firstTensor(x[0]) : null;
}

export interface CountMacsOptions {
  dtype?: DType;
  device?: string;
}

/**
 * Sums the MACs of every counted layer (see layerMacs) over one probePass on zeros of
 * `inputShape` (batch included).
 */
export function countMacs(model: Module<[Tensor], unknown>, inputShape: number[], o: CountMacsOptions = {}): MacsReport {
  const layers: LayerMacs[] = [];
  const removers = model.namedModules()
    .filter(([, m]) => countsMacs(m))
    .map(([name, m]) => m.registerForwardHook((mod, inputs, output) => {
      layers.push({ name, type: mod.typeName, macs: layerMacs(mod, inputs, output), outputShape: firstTensor(output)?.shape ?? [] });
    }));
  try {
    probePass('countMacs', model, inputShape, o);
  } finally {
    for (const remove of removers) remove();
  }
  return { total: layers.reduce((n, l) => n + l.macs, 0), layers };
}

/**
 * One eval-mode, no-grad forward pass on zeros of `inputShape` (batch included), in the model's
 * dtype and on its device, for the forward hooks of the caller to observe. A model built under
 * withDevice('meta') runs shape-only: no storage, no arithmetic. Training mode is restored.
 */
export function probePass(caller: string, model: Module<[Tensor], unknown>, inputShape: number[], o: CountMacsOptions = {}): void {
  if (!inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`${caller}: inputShape must be positive integers, got [${inputShape.join(', ')}]`);
  }
  const first = model.parameters()[0];
  const device = o.device ?? first?.device ?? 'cpu';
  const wasTraining = model.training;
  model.eval();
  try {
    withDevice(device, () => tidy(() => noGrad(() => {
      model.call(zeros(inputShape, { dtype: o.dtype ?? first?.dtype ?? 'float32' }));
    })));
  } finally {
    model.train(wasTraining);
  }
}
