// The libtorch engine: a convkit model in eval mode under noGrad (so that its fused inference
// convolutions run), in fp32 or in bf16 autocast, NCHW or channels-last.
import { noGrad, tidy, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { forward, logitsOf, type ClassifierModule } from '../train/evaluate.js';
import type { EngineBackend, EngineChoice, Precision } from './predictor.js';

type AnyModule = Module<never[], unknown>;

/** Logits of a batch, synchronously: what the backend and the probe time. */
export function libtorchLogits(model: AnyModule, batch: Tensor, p: Precision): { data: Float32Array; dims: number[] } {
  return noGrad(() => tidy(() => {
    const out = logitsOf(forward(model as unknown as ClassifierModule, batch, p)).float().contiguous();
    return { data: out.toTypedArray() as Float32Array, dims: out.shape };
  }));
}

/** Puts the model in the memory format of p (weights channels-last for channels-last inputs). */
export function layOut(model: AnyModule, p: Precision): void {
  model.to({ memoryFormat: p.channelsLast ? 'channelsLast' : 'contiguous' });
}

/** The backend owns the model: dispose() frees it. */
export function libtorchBackend(model: AnyModule, choice: EngineChoice): EngineBackend {
  const p = choice.precision ?? { bf16: false, channelsLast: false };
  model.eval();
  layOut(model, p);
  return {
    choice: { ...choice, precision: p },
    logits: (batch) => Promise.resolve(libtorchLogits(model, batch, p)),
    dispose() {
      model.dispose();
      return Promise.resolve();
    },
  };
}
