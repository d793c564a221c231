// ResNet, ResNeXt and Wide ResNet as torchvision's resnet.py builds them: one family, two block
// types (BasicBlock, Bottleneck) and one makeLayer. ResNet v1.5: the stride of a downsampling
// Bottleneck sits on its 3x3 conv, not on the first 1x1 (He et al.'s v1 put it on the 1x1).
// Field names and their order are torchvision's, so its state dicts load with no renaming.
import { F, type Tensor } from '../engine/index.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential, addShortcut, chain, init, type Layer, type Step,
} from '../nn/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, registerModel, type ModelConfig, type ModelOptions } from './registry.js';
import { checkDropRate, checkImageInput } from './checks.js';
import { poolAndClassify } from './blocks.js';

export function conv3x3(inPlanes: number, outPlanes: number, stride = 1, groups = 1, dilation = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, dilation, bias: false });
}

export function conv1x1(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

export interface BlockOptions {
  stride?: number;
  /** the shortcut's module when the residual changes shape; null: the identity */
  downsample?: Layer | null;
  groups?: number;
  /** channels per group at 64 planes (torchvision's base_width) */
  baseWidth?: number;
  dilation?: number;
}

/** A residual block: its last BN is the one zero_init_residual zeroes. */
export abstract class ResidualBlock extends Module {
  abstract residualNorm(): BatchNorm2d;
}

export interface BlockType {
  /** output channels per planes */
  readonly expansion: number;
  new (inplanes: number, planes: number, o?: BlockOptions): ResidualBlock;
}

export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: Module;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Layer | null;
  readonly stride: number;

  constructor(inplanes: number, planes: number, o: BlockOptions = {}) {
    super();
    if ((o.groups ?? 1) !== 1 || (o.baseWidth ?? 64) !== 64) {
      throw new Error(`BasicBlock only supports groups=1 and baseWidth=64, got groups=${o.groups} and baseWidth=${o.baseWidth}`);
    }
    if ((o.dilation ?? 1) > 1) throw new Error(`BasicBlock does not support dilation > 1, got ${o.dilation}`);
    this.stride = o.stride ?? 1;
    this.conv1 = conv3x3(inplanes, planes, this.stride);
    this.bn1 = new BatchNorm2d(planes);
    this.relu = new ReLU();
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = o.downsample ?? null;
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.conv1, this.bn1, this.relu, this.conv2, this.bn2, addShortcut(x, this.downsample), this.relu);
  }

  residualNorm(): BatchNorm2d {
    return this.bn2;
  }
}

export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  relu: Module;
  downsample: Layer | null;
  readonly stride: number;

  constructor(inplanes: number, planes: number, o: BlockOptions = {}) {
    super();
    const groups = o.groups ?? 1;
    // ResNeXt and Wide ResNet widen only the 3x3 (torchvision's width formula)
    const width = Math.floor(planes * ((o.baseWidth ?? 64) / 64)) * groups;
    this.stride = o.stride ?? 1;
    this.conv1 = conv1x1(inplanes, width);
    this.bn1 = new BatchNorm2d(width);
    this.conv2 = conv3x3(width, width, this.stride, groups, o.dilation ?? 1);
    this.bn2 = new BatchNorm2d(width);
    this.conv3 = conv1x1(width, planes * Bottleneck.expansion);
    this.bn3 = new BatchNorm2d(planes * Bottleneck.expansion);
    this.relu = new ReLU();
    this.downsample = o.downsample ?? null;
  }

  forward(x: Tensor): Tensor {
    return chain(
      x, this.conv1, this.bn1, this.relu, this.conv2, this.bn2, this.relu, this.conv3, this.bn3, addShortcut(x, this.downsample), this.relu,
    );
  }

  residualNorm(): BatchNorm2d {
    return this.bn3;
  }
}

/** Builds the shortcut of a block whose input and output shapes differ. */
export type ShortcutFactory = (inplanes: number, outplanes: number, stride: number) => Layer;

/** torchvision's downsample: a strided 1x1 conv and BN (the paper's option B). */
export const projectionShortcut: ShortcutFactory = (inplanes, outplanes, stride) =>
  new Sequential(conv1x1(inplanes, outplanes, stride), new BatchNorm2d(outplanes));

/** What makeLayer carries from one stage to the next (torchvision keeps it on self). */
export interface LayerState {
  inplanes: number;
  dilation: number;
  groups: number;
  baseWidth: number;
}

/**
 * One stage: `blocks` blocks of `planes`, the first one strided (or dilated instead, when
 * `dilate`) and given a shortcut when the shape changes. Advances `s` to the stage's output.
 */
export function makeLayer(
  block: BlockType, s: LayerState, planes: number, blocks: number, stride = 1, dilate = false, shortcut: ShortcutFactory = projectionShortcut,
): Sequential {
  const previousDilation = s.dilation;
  if (dilate) {
    s.dilation *= stride;
    stride = 1;
  }
  const outplanes = planes * block.expansion;
  const downsample = stride !== 1 || s.inplanes !== outplanes ? shortcut(s.inplanes, outplanes, stride) : null;
  const common = { groups: s.groups, baseWidth: s.baseWidth };
  const layers = [new block(s.inplanes, planes, { ...common, stride, downsample, dilation: previousDilation })];
  s.inplanes = outplanes;
  for (let i = 1; i < blocks; i++) layers.push(new block(s.inplanes, planes, { ...common, dilation: s.dilation }));
  return new Sequential(...layers);
}

/**
 * torchvision's initialisation: kaiming_normal(fan_out, relu) for convs, BN weight 1 and bias 0,
 * Linear left at its default; zeroInitResidual zeroes each block's last BN weight, so every
 * residual branch starts at zero and each block starts as the identity (Goyal et al. 2017).
 */
export function initResNetWeights(model: Module, zeroInitResidual = false): void {
  for (const m of model.modules()) {
    if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
    else if (m instanceof BatchNorm2d && m.weight && m.bias) {
      init.ones_(m.weight);
      init.zeros_(m.bias);
    }
  }
  if (!zeroInitResidual) return;
  for (const m of model.modules()) {
    if (m instanceof ResidualBlock) {
      const w = m.residualNorm().weight;
      if (w) init.zeros_(w);
    }
  }
}

/** F.dropout at the model's dropRate in training; nothing when the rate is 0. */
export function dropoutStep(m: { dropRate: number; training: boolean }): Step {
  return (t) => (m.dropRate > 0 ? F.dropout(t, m.dropRate, m.training) : t);
}

export interface ResNetOptions extends ModelOptions {
  /** convolution groups of the Bottleneck 3x3 (ResNeXt's cardinality) */
  groups?: number;
  /** channels per group at 64 planes: 64 ResNet, 4 or 8 ResNeXt, 128 Wide ResNet-2 */
  widthPerGroup?: number;
  /** replace the stride of layer2, layer3, layer4 with dilation (for dense prediction) */
  replaceStrideWithDilation?: [boolean, boolean, boolean];
}

/** Inputs below the output stride reach layer4 as a padded 1x1 map. */
export const RESNET_MIN_INPUT = 32;

export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: Module;
  maxpool: MaxPool2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  avgpool: AdaptiveAvgPool2d;
  fc: Linear;
  readonly inChannels: number;
  readonly numClasses: number;
  readonly numFeatures: number;
  readonly dropRate: number;

  /** `modelName` only labels errors: 'resnet50: expected input ...'. */
  constructor(block: BlockType, layers: [number, number, number, number], o: ResNetOptions = {}, readonly modelName = 'ResNet') {
    super();
    this.inChannels = o.inChannels ?? 3;
    this.numClasses = o.numClasses ?? 1000;
    this.dropRate = checkDropRate(modelName, o.dropRate ?? 0);
    const dilate = o.replaceStrideWithDilation ?? [false, false, false];
    if (dilate.length !== 3) throw new Error(`${modelName}: replaceStrideWithDilation needs 3 booleans, got ${dilate.length}`);
    const s: LayerState = { inplanes: 64, dilation: 1, groups: o.groups ?? 1, baseWidth: o.widthPerGroup ?? 64 };
    this.conv1 = new Conv2d(this.inChannels, 64, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(64);
    this.relu = new ReLU();
    this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
    this.layer1 = makeLayer(block, s, 64, layers[0]);
    this.layer2 = makeLayer(block, s, 128, layers[1], 2, dilate[0]);
    this.layer3 = makeLayer(block, s, 256, layers[2], 2, dilate[1]);
    this.layer4 = makeLayer(block, s, 512, layers[3], 2, dilate[2]);
    this.avgpool = new AdaptiveAvgPool2d([1, 1]);
    this.numFeatures = 512 * block.expansion;
    this.fc = new Linear(this.numFeatures, this.numClasses);
    initResNetWeights(this, o.zeroInitResidual ?? false);
  }

  /** The stem and the four stages: the [N, numFeatures, H/32, W/32] map before pooling. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageInput(this.modelName, x, this.inChannels, RESNET_MIN_INPUT);
    return chain(x, this.conv1, this.bn1, this.relu, this.maxpool, this.layer1, this.layer2, this.layer3, this.layer4);
  }

  /** Global average pool, dropout (dropRate) and the classifier. */
  forwardHead(features: Tensor): Tensor {
    return poolAndClassify(features, this.avgpool, dropoutStep(this), this.fc);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

// ---- the named models ----------------------------------------------------------------------------

interface Variant {
  block: BlockType;
  layers: [number, number, number, number];
  groups?: number;
  widthPerGroup?: number;
  paper: string;
}

const RESNET_PAPER = 'He et al. 2015, Deep Residual Learning for Image Recognition, arXiv:1512.03385 (v1.5: stride on the 3x3)';
const RESNEXT_PAPER = 'Xie et al. 2016, Aggregated Residual Transformations for Deep Neural Networks, arXiv:1611.05431';
const WRN_PAPER = 'Zagoruyko & Komodakis 2016, Wide Residual Networks, arXiv:1605.07146 (torchvision\'s bottleneck variant)';

/** torchvision's table: block type, blocks per stage, and the ResNeXt / wide settings. */
export const RESNET_VARIANTS = {
  resnet18: { block: BasicBlock, layers: [2, 2, 2, 2], paper: RESNET_PAPER },
  resnet34: { block: BasicBlock, layers: [3, 4, 6, 3], paper: RESNET_PAPER },
  resnet50: { block: Bottleneck, layers: [3, 4, 6, 3], paper: RESNET_PAPER },
  resnet101: { block: Bottleneck, layers: [3, 4, 23, 3], paper: RESNET_PAPER },
  resnet152: { block: Bottleneck, layers: [3, 8, 36, 3], paper: RESNET_PAPER },
  resnext50_32x4d: { block: Bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4, paper: RESNEXT_PAPER },
  resnext101_32x8d: { block: Bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8, paper: RESNEXT_PAPER },
  resnext101_64x4d: { block: Bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4, paper: RESNEXT_PAPER },
  wide_resnet50_2: { block: Bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128, paper: WRN_PAPER },
  wide_resnet101_2: { block: Bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 128, paper: WRN_PAPER },
} satisfies Record<string, Variant>;

export type ResNetName = keyof typeof RESNET_VARIANTS;

/** A named variant; its fixed groups / widthPerGroup may be restated but not changed (as torchvision). */
export function buildResNet(name: ResNetName, o: ResNetOptions = {}): ResNet {
  const v: Variant = RESNET_VARIANTS[name];
  if (!v) throw new Error(`unknown ResNet '${String(name)}': known ones are ${Object.keys(RESNET_VARIANTS).join(', ')}`);
  const fixed = { groups: v.groups, widthPerGroup: v.widthPerGroup };
  for (const key of ['groups', 'widthPerGroup'] as const) {
    const want = fixed[key];
    if (want !== undefined && o[key] !== undefined && o[key] !== want) {
      throw new Error(`${name}: ${key} is fixed at ${want} by the architecture, got ${o[key]}`);
    }
  }
  return new ResNet(v.block, v.layers, { ...o, groups: v.groups ?? o.groups, widthPerGroup: v.widthPerGroup ?? o.widthPerGroup }, name);
}

export const resnet18 = (o: ResNetOptions = {}): ResNet => buildResNet('resnet18', o);
export const resnet34 = (o: ResNetOptions = {}): ResNet => buildResNet('resnet34', o);
export const resnet50 = (o: ResNetOptions = {}): ResNet => buildResNet('resnet50', o);
export const resnet101 = (o: ResNetOptions = {}): ResNet => buildResNet('resnet101', o);
export const resnet152 = (o: ResNetOptions = {}): ResNet => buildResNet('resnet152', o);
export const resnext50_32x4d = (o: ResNetOptions = {}): ResNet => buildResNet('resnext50_32x4d', o);
export const resnext101_32x8d = (o: ResNetOptions = {}): ResNet => buildResNet('resnext101_32x8d', o);
export const resnext101_64x4d = (o: ResNetOptions = {}): ResNet => buildResNet('resnext101_64x4d', o);
export const wide_resnet50_2 = (o: ResNetOptions = {}): ResNet => buildResNet('wide_resnet50_2', o);
export const wide_resnet101_2 = (o: ResNetOptions = {}): ResNet => buildResNet('wide_resnet101_2', o);

const imagenetConfig = (paper: string): ModelConfig => ({
  family: 'resnet',
  inputSize: [3, 224, 224],
  minInputSize: RESNET_MIN_INPUT,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  interpolation: 'bilinear',
  cropPct: 0.875,
  torchvision: true,
  paper,
});

for (const [name, v] of Object.entries(RESNET_VARIANTS) as [ResNetName, Variant][]) {
  registerModel<ResNetOptions>({ name, config: imagenetConfig(v.paper), build: (o) => buildResNet(name, o) });
}
