// Convolution layers, initialised as PyTorch initialises them.
import { F, empty, type Tensor } from '../engine/index.js';
import { Module, Parameter } from './module.js';
import { fans, kaimingUniform_, uniform_ } from './init.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (Array.isArray(v) ? v : [v, v]);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** PyTorch's default for conv and linear: kaiming_uniform(a=sqrt(5)) and a fan-in bias bound. */
export function resetConvLike(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const { fanIn } = fans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}

export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must both be divisible by groups (${this.groups})`);
    }
    this.stride = pair(o.stride ?? 1);
    this.padding = typeof o.padding === 'string' ? o.padding : pair(o.padding ?? 0);
    this.dilation = pair(o.dilation ?? 1);
    const [kh, kw] = pair(kernelSize);
    this.weight = new Parameter(empty([outChannels, inChannels / this.groups, kh, kw]));
    this.bias = (o.bias ?? true) ? new Parameter(empty([outChannels])) : null;
    resetConvLike(this.weight, this.bias);
  }

  get kernelSize(): [number, number] {
    const s = this.weight.shape;
    return [s[2], s[3]];
  }

  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr(): string {
    const [kh, kw] = this.kernelSize;
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=(${kh}, ${kw}), stride=(${this.stride.join(', ')})`;
    if (this.padding !== 'valid' && (typeof this.padding === 'string' || this.padding.some((p) => p !== 0))) {
      s += `, padding=${typeof this.padding === 'string' ? this.padding : `(${this.padding.join(', ')})`}`;
    }
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=(${this.dilation.join(', ')})`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ', bias=False';
    return s;
  }
}

export class Conv1d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number,
    readonly o: { stride?: number; padding?: number | 'same' | 'valid'; dilation?: number; groups?: number; bias?: boolean } = {}) {
    super();
    const groups = o.groups ?? 1;
    this.weight = new Parameter(empty([outChannels, inChannels / groups, kernelSize]));
    this.bias = (o.bias ?? true) ? new Parameter(empty([outChannels])) : null;
    resetConvLike(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.conv1d(x, this.weight, this.bias, this.o);
  }
}
