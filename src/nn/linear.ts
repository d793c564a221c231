// Linear, Embedding, and the shape-only layers Identity and Flatten.
import { F, empty, noGrad, type Tensor } from '../engine/index.js';
import { Module, Parameter } from './module.js';
import { resetConvLike } from './conv.js';
import { normal_ } from './init.js';

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: { bias?: boolean } = {}) {
    super();
    this.weight = new Parameter(empty([outFeatures, inFeatures]));
    this.bias = (o.bias ?? true) ? new Parameter(empty([outFeatures])) : null;
    resetConvLike(this.weight, this.bias);
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

export class Embedding extends Module {
  weight: Parameter;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, readonly o: { paddingIdx?: number } = {}) {
    super();
    this.weight = new Parameter(normal_(empty([numEmbeddings, embeddingDim])));
    const p = o.paddingIdx;
    if (p !== undefined) {
      if (p < -numEmbeddings || p >= numEmbeddings) throw new RangeError(`Embedding: paddingIdx ${p} is outside [-${numEmbeddings}, ${numEmbeddings})`);
      noGrad(() => this.weight.select(0, p < 0 ? p + numEmbeddings : p).zero_());
    }
  }
  forward(indices: Tensor): Tensor {
    const p = this.o.paddingIdx;
    return F.embedding(indices, this.weight, p === undefined ? undefined : p < 0 ? p + this.numEmbeddings : p);
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}`;
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}
