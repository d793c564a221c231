// The small ResNet-style net the engine and augmentation benchmarks time: a 3x3 stem and three
// basic blocks of 16, 32 and 64 channels (the last two strided, with projection shortcuts).
import type { Tensor } from '../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, Module, Sequential } from '../src/nn/index.js';

export class Block extends Module {
  conv1: Conv2d; bn1: BatchNorm2d; conv2: Conv2d; bn2: BatchNorm2d; down: Sequential | null = null;
  constructor(cin: number, cout: number, stride: number) {
    super();
    this.conv1 = new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(cout);
    this.conv2 = new Conv2d(cout, cout, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(cout);
    if (stride !== 1 || cin !== cout) this.down = new Sequential(new Conv2d(cin, cout, 1, { stride, bias: false }), new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    const out = this.bn2.call(this.conv2.call(this.bn1.call(this.conv1.call(x)).relu()));
    return out.add(this.down ? this.down.call(x) : x).relu();
  }
}

export class Net extends Module {
  conv1 = new Conv2d(3, 16, 3, { padding: 1, bias: false });
  bn1 = new BatchNorm2d(16);
  layers = new Sequential(new Block(16, 16, 1), new Block(16, 32, 2), new Block(32, 64, 2));
  pool = new AdaptiveAvgPool2d(1);
  fc = new Linear(64, 10);
  forward(x: Tensor): Tensor {
    return this.fc.call(this.pool.call(this.layers.call(this.bn1.call(this.conv1.call(x)).relu())).flatten(1));
  }
}
