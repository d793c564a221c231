// Normalisation layers with PyTorch's parameters, buffers (running_mean, running_var,
// num_batches_tracked) and update rule.
import { F, ones, zeros, tensor, noGrad, type Tensor } from '../engine/index.js';
import { Module, Parameter } from './module.js';

export interface BatchNormOptions {
  eps?: number;
  /** null: a cumulative moving average, as in PyTorch */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

abstract class BatchNormBase extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly eps: number;
  readonly momentum: number | null;
  protected abstract readonly expectedDims: number[];

  constructor(readonly numFeatures: number, o: BatchNormOptions = {}) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    const affine = o.affine ?? true;
    this.weight = affine ? new Parameter(ones([numFeatures])) : null;
    this.bias = affine ? new Parameter(zeros([numFeatures])) : null;
    if (o.trackRunningStats ?? true) {
      this.registerBuffer('running_mean', zeros([numFeatures]));
      this.registerBuffer('running_var', ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', tensor(0));
    }
  }

  forward(x: Tensor): Tensor {
    return this.forwardFused(x, {});
  }

  /**
   * forward(x) + residual, then a ReLU where asked, in the same passes over the map where the
   * engine can (chain's training fusion).
   */
  forwardFused(x: Tensor, fused: { residual?: Tensor; relu?: boolean }): Tensor {
    if (!this.expectedDims.includes(x.ndim)) {
      throw new Error(`${this.typeName}: expected ${this.expectedDims.join('D or ')}D input, got ${x.ndim}D input of shape [${x.shape.join(', ')}]`);
    }
    const tracking = this.ownBuffers().length > 0;
    let momentum = this.momentum ?? 0;
    if (this.training && tracking) {
      const count = this.buffer('num_batches_tracked')!;
      noGrad(() => count.add_(1));
      if (this.momentum === null) momentum = 1 / count.item();
    }
    return F.batchNorm(x, tracking ? this.buffer('running_mean') : null, tracking ? this.buffer('running_var') : null, {
      weight: this.weight, bias: this.bias, training: this.training || !tracking, momentum, eps: this.eps, ...fused,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight ? 'True' : 'False'}`;
  }
}

export class BatchNorm2d extends BatchNormBase {
  protected readonly expectedDims = [4];
}

export class BatchNorm1d extends BatchNormBase {
  protected readonly expectedDims = [2, 3];
}

export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: number[];
  constructor(normalizedShape: number | number[], readonly o: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = Array.isArray(normalizedShape) ? normalizedShape : [normalizedShape];
    const affine = o.elementwiseAffine ?? true;
    this.weight = affine ? new Parameter(ones(this.normalizedShape)) : null;
    this.bias = affine && (o.bias ?? true) ? new Parameter(zeros(this.normalizedShape)) : null;
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.o.eps ?? 1e-5);
  }
  override extraRepr(): string {
    return `(${this.normalizedShape.join(', ')},), eps=${this.o.eps ?? 1e-5}`;
  }
}

export class GroupNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  constructor(readonly numGroups: number, readonly numChannels: number, readonly o: { eps?: number; affine?: boolean } = {}) {
    super();
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: numChannels (${numChannels}) must be divisible by numGroups (${numGroups})`);
    const affine = o.affine ?? true;
    this.weight = affine ? new Parameter(ones([numChannels])) : null;
    this.bias = affine ? new Parameter(zeros([numChannels])) : null;
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, this.weight, this.bias, this.o.eps ?? 1e-5);
  }
}
