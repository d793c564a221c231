// Multiply-accumulates of a forward pass, measured rather than derived: forward hooks on every
// convolution and linear layer read the real output shapes of one pass, so any architecture
// (and any input size) is counted by the same rule. FLOPs are about 2 x MACs.
import { noGrad, tidy, zeros, type DType, type Tensor } from '../engine/index.js';
import { Conv1d, Conv2d, Linear, type Module } from '../nn/index.js';

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

/**
 * MACs of one layer call: conv = output elements x (in_channels / groups) x kernel area;
 * linear = output elements x in_features. Other layers count zero (their cost is elementwise).
 */
export function layerMacs(m: Module<unknown[], unknown>, output: Tensor): number {
  const out = output.numel();
  if (m instanceof Conv2d || m instanceof Conv1d) {
    const [, inPerGroup, ...kernel] = m.weight.shape;
    return out * inPerGroup * kernel.reduce((a, b) => a * b, 1);
  }
  if (m instanceof Linear) return out * m.inFeatures;
  return 0;
}

export interface CountMacsOptions {
  dtype?: DType;
  device?: string;
}

/**
 * Runs one eval-mode forward pass on zeros of `inputShape` (batch included) and sums the MACs
 * of every Conv1d, Conv2d and Linear call. The model's training mode is restored afterwards.
 */
export function countMacs(model: Module<[Tensor], unknown>, inputShape: number[], o: CountMacsOptions = {}): MacsReport {
  if (!inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`countMacs: inputShape must be positive integers, got [${inputShape.join(', ')}]`);
  }
  const layers: LayerMacs[] = [];
  const first = model.parameters()[0];
  const removers = model.namedModules()
    .filter(([, m]) => m instanceof Conv2d || m instanceof Conv1d || m instanceof Linear)
    .map(([name, m]) => m.registerForwardHook((mod, _inputs, output) => {
      const t = output as Tensor;
      layers.push({ name, type: mod.typeName, macs: layerMacs(mod, t), outputShape: t.shape });
    }));
  const wasTraining = model.training;
  model.eval();
  try {
    tidy(() => noGrad(() => {
      const x = zeros(inputShape, { dtype: o.dtype ?? first?.dtype ?? 'float32', device: o.device ?? first?.device ?? 'cpu' });
      model.call(x);
    }));
  } finally {
    for (const remove of removers) remove();
    model.train(wasTraining);
  }
  return { total: layers.reduce((n, l) => n + l.macs, 0), layers };
}
