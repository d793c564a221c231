// Regularisers that act only in training mode.
import { F, bernoulli, empty, type Tensor } from '../engine/index.js';
import { Module } from './module.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

export class Dropout2d extends Dropout {
  override forward(x: Tensor): Tensor {
    return F.dropout2d(x, this.p, this.training);
  }
}

/**
 * Drops whole residual branches per sample ('row') or per batch ('batch'), scaling survivors
 * by 1/(1-p): stochastic depth as torchvision.ops.stochastic_depth.
 */
export function stochasticDepth(x: Tensor, p: number, mode: 'row' | 'batch', training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`stochasticDepth: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const survival = 1 - p;
  const shape = mode === 'row' ? [x.size(0), ...Array<number>(x.ndim - 1).fill(1)] : Array<number>(x.ndim).fill(1);
  const blank = empty(shape, { dtype: x.dtype, device: x.device });
  const noise = bernoulli(blank, survival);
  blank.dispose();
  if (survival > 0) noise.div_(survival);
  const out = x.mul(noise);
  noise.dispose();
  return out;
}

export class StochasticDepth extends Module {
  constructor(readonly p: number, readonly mode: 'row' | 'batch' = 'row') {
    super();
  }
  forward(x: Tensor): Tensor {
    return stochasticDepth(x, this.p, this.mode, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}, mode=${this.mode}`;
  }
}
