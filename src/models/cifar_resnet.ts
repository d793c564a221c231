// The CIFAR-10 ResNets of He et al. 2015 (sec. 4.2): a 3x3 conv stem of 16 channels, three stages
// of n BasicBlocks at 16, 32 and 64 channels (feature maps 32, 16, 8 on CIFAR), global average
// pooling and the classifier: 6n+2 weighted layers, ResNet-20/32/44/56/110.
//
// Shortcuts are the paper's option A, as in its CIFAR experiments: parameter-free, the input is
// subsampled by the stride and zero-padded with the extra channels, so ResNet-20 has 269,722
// parameters for 10 classes (0.27 M in the paper's table 6). Parameter names follow torchvision's
// resnet (conv1, bn1, layer1.0.conv1, fc); the reference is test/helpers/ref_models.py.
import type { Tensor } from '../engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, Module, ReLU, Sequential, ZeroPadChannels, chain } from '../nn/index.js';
import { registerModel, type ModelConfig, type ModelOptions } from './registry.js';
import { BasicBlock, conv3x3, dropoutStep, initResNetWeights, makeLayer, type LayerState, type ShortcutFactory } from './resnet.js';
import { checkDropRate, checkImageInput } from './checks.js';
import { poolAndClassify } from './blocks.js';

export const CIFAR_MEAN: [number, number, number] = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD: [number, number, number] = [0.247, 0.2435, 0.2616];

/**
 * Option A: take every stride-th pixel and pad the new channels with zeros, half on each side.
 * The zeros are a layer of their own (`pad`), so that channel pruning may drop some of them.
 */
export class PadShortcut extends Module {
  readonly pad: ZeroPadChannels;

  constructor(inPlanes: number, outPlanes: number, readonly stride: number) {
    super();
    if (outPlanes < inPlanes) throw new Error(`PadShortcut: cannot shrink ${inPlanes} channels to ${outPlanes}`);
    const extra = outPlanes - inPlanes;
    const front = Math.floor(extra / 2);
    this.pad = new ZeroPadChannels(front, extra - front);
  }

  forward(x: Tensor): Tensor {
    const s = this.stride;
    const sub = s === 1 ? x : x.slice(2, 0, undefined, s).slice(3, 0, undefined, s);
    return this.pad.call(sub);
  }

  override extraRepr(): string {
    return `stride=${this.stride}`;
  }
}

const optionA: ShortcutFactory = (inplanes, outplanes, stride) => new PadShortcut(inplanes, outplanes, stride);

/** The paper's smallest map is 8x8 on 32x32 CIFAR; the net's output stride is 4. */
export const CIFAR_RESNET_MIN_INPUT = 4;

export class CifarResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: Module;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  avgpool: AdaptiveAvgPool2d;
  fc: Linear;
  readonly depth: number;
  readonly inChannels: number;
  readonly numClasses: number;
  readonly numFeatures = 64;
  readonly dropRate: number;

  /** depth = 6n + 2: 20, 32, 44, 56, 110, 1202. */
  constructor(depth: number, o: ModelOptions = {}, readonly modelName = `resnet${depth}`) {
    super();
    if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
      throw new Error(`${modelName}: CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), got ${depth}`);
    }
    const n = (depth - 2) / 6;
    this.depth = depth;
    this.inChannels = o.inChannels ?? 3;
    this.numClasses = o.numClasses ?? 10;
    this.dropRate = checkDropRate(modelName, o.dropRate ?? 0);
    const s: LayerState = { inplanes: 16, dilation: 1, groups: 1, baseWidth: 64 };
    this.conv1 = conv3x3(this.inChannels, 16);
    this.bn1 = new BatchNorm2d(16);
    this.relu = new ReLU();
    this.layer1 = makeLayer(BasicBlock, s, 16, n, 1, false, optionA);
    this.layer2 = makeLayer(BasicBlock, s, 32, n, 2, false, optionA);
    this.layer3 = makeLayer(BasicBlock, s, 64, n, 2, false, optionA);
    this.avgpool = new AdaptiveAvgPool2d([1, 1]);
    this.fc = new Linear(64, this.numClasses);
    initResNetWeights(this, o.zeroInitResidual ?? false);
  }

  /** The stem and the three stages: the [N, 64, H/4, W/4] map before pooling. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageInput(this.modelName, x, this.inChannels, CIFAR_RESNET_MIN_INPUT);
    return chain(x, this.conv1, this.bn1, this.relu, this.layer1, this.layer2, this.layer3);
  }

  /** Global average pool, dropout (dropRate) and the classifier. */
  forwardHead(features: Tensor): Tensor {
    return poolAndClassify(features, this.avgpool, dropoutStep(this), this.fc);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

export const cifarResNet = (depth: number, o: ModelOptions = {}): CifarResNet => new CifarResNet(depth, o);
export const resnet20 = (o: ModelOptions = {}): CifarResNet => new CifarResNet(20, o);
export const resnet32 = (o: ModelOptions = {}): CifarResNet => new CifarResNet(32, o);
export const resnet44 = (o: ModelOptions = {}): CifarResNet => new CifarResNet(44, o);
export const resnet56 = (o: ModelOptions = {}): CifarResNet => new CifarResNet(56, o);
export const resnet110 = (o: ModelOptions = {}): CifarResNet => new CifarResNet(110, o);

const CIFAR_CONFIG: ModelConfig = {
  family: 'resnet',
  inputSize: [3, 32, 32],
  minInputSize: CIFAR_RESNET_MIN_INPUT,
  mean: CIFAR_MEAN,
  std: CIFAR_STD,
  interpolation: 'bilinear',
  // CIFAR is evaluated on the whole 32x32 image, uncropped
  cropPct: 1,
  torchvision: false,
  paper: 'He et al. 2015, Deep Residual Learning for Image Recognition, arXiv:1512.03385, sec. 4.2 (CIFAR-10, option A shortcuts)',
};

for (const depth of [20, 32, 44, 56, 110]) {
  registerModel<ModelOptions>({ name: `resnet${depth}`, config: { ...CIFAR_CONFIG }, build: (o) => new CifarResNet(depth, o) });
}
