// A tiny CNN registered as 'tiny_cnn' (and 'tiny_cnn_dropout'), so trainer and CLI tests run in
// seconds. CLI tests load it into the child with --import.
import type { Tensor } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, Module, ReLU } from '../../src/nn/index.js';
import { listModels, registerModel, type ModelOptions } from '../../src/models/index.js';

export class TinyCnn extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: Module;
  pool: MaxPool2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  avgpool: AdaptiveAvgPool2d;
  dropout: Dropout;
  fc: Linear;

  constructor(o: ModelOptions = {}) {
    super();
    this.conv1 = new Conv2d(o.inChannels ?? 1, 16, 3, { padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(16);
    this.relu = new ReLU();
    this.pool = new MaxPool2d(2);
    this.conv2 = new Conv2d(16, 32, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(32);
    this.avgpool = new AdaptiveAvgPool2d([1, 1]);
    this.dropout = new Dropout(o.dropRate ?? 0);
    this.fc = new Linear(32, o.numClasses ?? 10);
  }

  forward(x: Tensor): Tensor {
    const y = this.pool.call(this.relu.call(this.bn1.call(this.conv1.call(x))));
    const z = this.relu.call(this.bn2.call(this.conv2.call(y)));
    return this.fc.call(this.dropout.call(this.avgpool.call(z).flatten(1)));
  }
}

const CONFIG = {
  family: 'test', inputSize: [1, 28, 28] as [number, number, number], minInputSize: 4, mean: [0.5, 0.5, 0.5] as [number, number, number],
  std: [0.5, 0.5, 0.5] as [number, number, number], interpolation: 'bilinear' as const, cropPct: 1, torchvision: false,
};

if (!listModels().some((e) => e.name === 'tiny_cnn')) {
  registerModel({ name: 'tiny_cnn', config: CONFIG, build: (o: ModelOptions) => new TinyCnn(o) });
  registerModel({ name: 'tiny_cnn_dropout', config: CONFIG, build: (o: ModelOptions) => new TinyCnn({ dropRate: 0.2, ...o }) });
}
