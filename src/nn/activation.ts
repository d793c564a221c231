// Every activation as a module.
import { F, type Tensor } from '../engine/index.js';
import { Module } from './module.js';

/** An activation module from a function of one tensor. */
function activation(name: string, fn: (x: Tensor) => Tensor): new () => Module {
  const cls = class extends Module {
    forward(x: Tensor): Tensor {
      return fn(x);
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const ReLU = activation('ReLU', F.relu);
export const ReLU6 = activation('ReLU6', F.relu6);
export const SiLU = activation('SiLU', F.silu);
export const Sigmoid = activation('Sigmoid', F.sigmoid);
export const Tanh = activation('Tanh', F.tanh);
export const Hardswish = activation('Hardswish', F.hardswish);
export const Hardsigmoid = activation('Hardsigmoid', F.hardsigmoid);
export const Mish = activation('Mish', F.mish);

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
}

export class ELU extends Module {
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.elu(x, this.alpha);
  }
}

export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}

export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.softmax(x, this.dim);
  }
}

export class LogSoftmax extends Module {
  constructor(readonly dim: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.logSoftmax(x, this.dim);
  }
}
