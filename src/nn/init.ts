// Weight initialisers with torch.nn.init's names, formulas and fan conventions. Each fills the
// tensor in place without recording autograd history and returns it.
import { noGrad, type Tensor } from '../engine/index.js';

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

/** fan_in and fan_out of a weight: [out, in, *kernel] for conv and linear, as PyTorch computes them. */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2) throw new Error(`init: fan in and fan out need a tensor of at least 2 dimensions, got shape [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: s[1] * receptive, fanOut: s[0] * receptive };
}

export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv2d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': { const slope = param ?? 0.01; return Math.sqrt(2 / (1 + slope * slope)); }
    case 'selu': return 3 / 4;
  }
}

const inPlace = (t: Tensor, fill: () => void): Tensor => { noGrad(fill); return t; };

export const uniform_ = (t: Tensor, a = 0, b = 1): Tensor => inPlace(t, () => t.uniform_(a, b));
export const normal_ = (t: Tensor, mean = 0, std = 1): Tensor => inPlace(t, () => t.normal_(mean, std));
export const constant_ = (t: Tensor, value: number): Tensor => inPlace(t, () => t.fill_(value));
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

export interface KaimingOptions {
  /** the negative slope of the rectifier after this layer (leaky_relu) */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}
function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const { fanIn, fanOut } = fans(t);
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return gain / Math.sqrt((o.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut);
}
export const kaimingNormal_ = (t: Tensor, o: KaimingOptions = {}): Tensor => normal_(t, 0, kaimingStd(t, o));
export const kaimingUniform_ = (t: Tensor, o: KaimingOptions = {}): Tensor => {
  const bound = Math.sqrt(3) * kaimingStd(t, o);
  return uniform_(t, -bound, bound);
};

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fans(t);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -a, a);
}
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/** Normal(mean, std) truncated to [a, b], by inverse-CDF sampling as torch.nn.init.trunc_normal_. */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2): Tensor {
  const cdf = (x: number): number => (1 + erf(x / Math.SQRT2)) / 2;
  const l = cdf((a - mean) / std);
  const u = cdf((b - mean) / std);
  return inPlace(t, () => {
    t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * Math.SQRT2).add_(mean).clamp_(a, b);
  });
}

// erf by its Taylor series: exact to ~1e-12 for |x| <= 4, where the series is still well
// conditioned; beyond that erf is 1 to within 2e-8, which is all truncation bounds need.
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 4) return Math.sign(x);
  let sum = ax;
  let term = ax;
  for (let n = 1; n < 200; n++) {
    term *= (-ax * ax) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}
