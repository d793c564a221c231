// ZeroPadChannels: new all-zero channels before and after a feature map's own (the CIFAR
// ResNets' option-A shortcut). A layer of its own, not an F.pad inside some forward, so that
// channel pruning can see which zero channels it may drop and change the amounts.
import { F, type Tensor } from '../engine/index.js';
import { Module } from './module.js';

const count = (v: number, what: string): number => {
  if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`ZeroPadChannels: ${what} must be a whole number of channels >= 0, got ${v}`);
  return v;
};

export class ZeroPadChannels extends Module {
  readonly front: number;
  readonly back: number;

  /** Pads dim 1 of an [N, C, ...] tensor with `front` zero channels before and `back` after. */
  constructor(front: number, back: number) {
    super();
    this.front = count(front, 'front');
    this.back = count(back, 'back');
  }

  forward(x: Tensor): Tensor {
    if (this.front === 0 && this.back === 0) return x;
    if (x.ndim < 2) throw new Error(`ZeroPadChannels: expected an [N, C, ...] tensor, got shape [${x.shape.join(', ')}]`);
    const spatial = new Array<number>(2 * (x.ndim - 2)).fill(0);
    return F.pad(x, [...spatial, this.front, this.back]);
  }

  override extraRepr(): string {
    return `front=${this.front}, back=${this.back}`;
  }
}
