// MobileNetV2 (Sandler et al. 2018) with torchvision 0.14's module names
// (features.N.conv.0.0.weight, ...), so its state dicts load by name.
import { F, type Tensor } from '../engine/index.js';
import { pythonRound } from '../engine/math.js';
import { BatchNorm2d, Conv2d, Dropout, Linear, Module, ReLU6, Sequential, addShortcut, chain, init, stochasticDepth, type Layer } from '../nn/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, registerModel, type ModelOptions } from './registry.js';
import { Conv2dNormActivation, initConvAndNorm, makeDivisible, poolAndClassify } from './blocks.js';
import { checkImageInput } from './checks.js';

/** [expand ratio t, output channels c, repeats n, first stride s], the paper's Table 2. */
export type InvertedResidualRow = [t: number, c: number, n: number, s: number];

export const MOBILENET_V2_SETTING: readonly InvertedResidualRow[] = Object.freeze([
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
] as InvertedResidualRow[]);

export interface MobileNetV2Options extends ModelOptions {
  /** scales every width (default 1) */
  widthMult?: number;
  /** widths round to multiples of this (default 8; 1 turns rounding off) */
  roundNearest?: number;
  /** the block table; default the paper's */
  invertedResidualSetting?: readonly InvertedResidualRow[];
}

/** Expand 1x1, depthwise 3x3, linear 1x1 projection; a residual when shapes allow. */
export class InvertedResidual extends Module {
  conv: Sequential;
  readonly useResConnect: boolean;
  readonly outChannels: number;

  constructor(inp: number, oup: number, readonly stride: number, expandRatio: number, readonly dropPath = 0) {
    super();
    if (stride !== 1 && stride !== 2) throw new RangeError(`InvertedResidual: stride must be 1 or 2, got ${stride}`);
    const hidden = pythonRound(inp * expandRatio);
    this.useResConnect = stride === 1 && inp === oup;
    const act = (): Layer => new ReLU6();
    const layers: Layer[] = [];
    if (expandRatio !== 1) layers.push(new Conv2dNormActivation(inp, hidden, { kernelSize: 1, activation: act }));
    layers.push(
      new Conv2dNormActivation(hidden, hidden, { stride, groups: hidden, activation: act }),
      new Conv2d(hidden, oup, 1, { bias: false }),
      new BatchNorm2d(oup),
    );
    this.conv = new Sequential(...layers);
    this.outChannels = oup;
  }

  forward(x: Tensor): Tensor {
    if (!this.useResConnect) return this.conv.call(x);
    return chain(x, this.conv, (y) => stochasticDepth(y, this.dropPath, 'row', this.training), addShortcut(x));
  }
}

export class MobileNetV2 extends Module {
  features: Sequential;
  classifier: Sequential;
  readonly lastChannel: number;
  readonly inChannels: number;

  constructor(o: MobileNetV2Options = {}) {
    super();
    const name = 'mobilenet_v2';
    const width = o.widthMult ?? 1;
    const round = o.roundNearest ?? 8;
    const setting = o.invertedResidualSetting ?? MOBILENET_V2_SETTING;
    checkOptions(name, o, width, round, setting);
    this.inChannels = o.inChannels ?? 3;
    let input = makeDivisible(32 * width, round);
    this.lastChannel = makeDivisible(1280 * Math.max(1, width), round);
    const layers: Layer[] = [new Conv2dNormActivation(this.inChannels, input, { stride: 2, activation: () => new ReLU6() })];
    const total = setting.reduce((n, r) => n + r[2], 0);
    const dropPath = o.dropPathRate ?? 0;
    for (const [t, c, n, s] of setting) {
      const output = makeDivisible(c * width, round);
      for (let i = 0; i < n; i++) {
        // torchvision has no stochastic depth here; when asked for, it grows linearly with depth as in timm
        layers.push(new InvertedResidual(input, output, i === 0 ? s : 1, t, (dropPath * (layers.length - 1)) / total));
        input = output;
      }
    }
    layers.push(new Conv2dNormActivation(input, this.lastChannel, { kernelSize: 1, activation: () => new ReLU6() }));
    this.features = new Sequential(...layers);
    this.classifier = new Sequential(new Dropout(o.dropRate ?? 0.2), new Linear(this.lastChannel, o.numClasses ?? 1000));
    initMobileNet(this, o.zeroInitResidual ?? false);
  }

  /** The stem, the inverted residuals and the last 1x1 conv: the [N, lastChannel, H/32, W/32] map before pooling. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageInput('mobilenet_v2', x, this.inChannels, 1);
    return this.features.call(x);
  }

  /** Global average pool, then the classifier (dropout, linear). */
  forwardHead(features: Tensor): Tensor {
    return poolAndClassify(features, (t) => F.adaptiveAvgPool2d(t, 1), this.classifier);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

function checkOptions(name: string, o: MobileNetV2Options, width: number, round: number, setting: readonly InvertedResidualRow[]): void {
  if (!(Number.isFinite(width) && width > 0)) throw new RangeError(`${name}: widthMult must be a positive number, got ${width}`);
  if (!(Number.isInteger(round) && round > 0)) throw new RangeError(`${name}: roundNearest must be a positive integer, got ${round}`);
  for (const key of ['numClasses', 'inChannels'] as const) {
    const v = o[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new RangeError(`${name}: ${key} must be a positive integer, got ${v}`);
  }
  for (const key of ['dropRate', 'dropPathRate'] as const) {
    const v = o[key];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`${name}: ${key} must be in [0, 1], got ${v}`);
  }
  if (setting.length === 0 || setting.some((r) => r.length !== 4)) {
    throw new Error(`${name}: invertedResidualSetting must be a non-empty list of [t, c, n, s] rows, got ${JSON.stringify(setting)}`);
  }
}

/** torchvision's rule: kaiming-normal convs, unit BN, Linear normal(0, 0.01). */
function initMobileNet(model: MobileNetV2, zeroInitResidual: boolean): void {
  initConvAndNorm(model);
  for (const m of model.modules()) {
    if (!(m instanceof Linear)) continue;
    init.normal_(m.weight, 0, 0.01);
    if (m.bias) init.zeros_(m.bias);
  }
  if (!zeroInitResidual) return;
  // each residual branch then starts as the identity (Goyal et al. 2017)
  for (const m of model.modules()) {
    if (!(m instanceof InvertedResidual && m.useResConnect)) continue;
    const bn = m.conv.at(-1);
    if (bn instanceof BatchNorm2d && bn.weight) init.zeros_(bn.weight);
  }
}

export const mobilenetV2 = (o: MobileNetV2Options = {}): MobileNetV2 => new MobileNetV2(o);

// torchvision 0.14's DEFAULT weights (IMAGENET1K_V2) evaluate with a bilinear resize to 232, crop 224.
registerModel<MobileNetV2Options>({
  name: 'mobilenet_v2',
  config: {
    family: 'mobilenet',
    inputSize: [3, 224, 224],
    minInputSize: 1,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    interpolation: 'bilinear',
    cropPct: 224 / 232,
    torchvision: true,
    paper: 'Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018 (arXiv:1801.04381)',
  },
  build: mobilenetV2,
});
