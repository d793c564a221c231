// Whether bfloat16 autocast makes this model's training step faster on this CPU. Native bf16
// does not pay everywhere, and where it pays depends on the kernels: on a 2-core Zen 4 (AVX-512
// BF16), EfficientNet-B0 at 64 px trained at 120 images/s in bf16 against 172 in fp32 while
// oneDNN computed its depthwise weight gradients, and at 247 against 219 once convkit did. So
// `bf16: 'auto'` on such a CPU times both.
import { performance } from 'node:perf_hooks';
import { F, getRngState, noGrad, setRngState, tidy, type Tensor } from '../engine/index.js';
import { forward, logitsOf, type ClassifierModule } from './evaluate.js';

export interface Bf16Probe {
  /** bf16 was faster than fp32 by the margin asked for */
  bf16: boolean;
  /** median milliseconds of a forward + backward pass */
  fp32Ms: number;
  bf16Ms: number;
}

export interface ProbeOptions {
  channelsLast: boolean;
  /** timed passes per precision, after one untimed warm-up (default 3) */
  steps?: number;
  /** bf16 must be this many times faster (default 1.1: a near tie keeps fp32's numerics) */
  margin?: number;
}

/**
 * Times forward + backward passes on one batch (images x, class indices y) in fp32 and in bf16.
 * No optimizer step is taken, and the model's buffers (BatchNorm statistics), gradients and the
 * random generator are restored, so the run goes on as if the probe had not been.
 */
export function probeBf16(model: ClassifierModule, x: Tensor, y: Tensor, o: ProbeOptions): Bf16Probe {
  const steps = o.steps ?? 3;
  const buffers = noGrad(() => model.namedBuffers().map(([, b]) => [b, b.clone()] as const));
  const rng = getRngState();
  const wasTraining = model.training;
  model.train();
  try {
    const median = (bf16: boolean): number => {
      const ms: number[] = [];
      for (let i = 0; i <= steps; i++) {
        const t0 = performance.now();
        tidy(() => F.crossEntropy(logitsOf(forward(model, x, { bf16, channelsLast: o.channelsLast })).float(), y).backward());
        if (i > 0) ms.push(performance.now() - t0);
      }
      return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
    };
    const fp32Ms = median(false);
    const bf16Ms = median(true);
    return { bf16: bf16Ms * (o.margin ?? 1.1) < fp32Ms, fp32Ms, bf16Ms };
  } finally {
    model.zeroGrad();
    noGrad(() => { for (const [b, saved] of buffers) { b.copy_(saved); saved.dispose(); } });
    setRngState(rng);
    rng.dispose();
    model.train(wasTraining);
  }
}
