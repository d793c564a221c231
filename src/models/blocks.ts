// Shared building blocks: every classifier's head (timm's forward_head), and the blocks of the
// mobile families (MobileNet, EfficientNet, ...) with torchvision.ops' names and layouts: Conv2dNormActivation is a Sequential named '0' (conv),
// '1' (norm), '2' (activation); SqueezeExcitation holds fc1 and fc2 as 1x1 convolutions.
import type { Tensor } from '../engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Module, ReLU, Sequential, Sigmoid, chain, init, type Layer, type Step } from '../nn/index.js';

/** Makes an activation layer: () => new SiLU(). */
export type LayerFactory = () => Layer;
/** Makes a normalisation layer for a channel count: (c) => new BatchNorm2d(c, { eps: 1e-3 }). */
export type NormFactory = (channels: number) => Layer;

/**
 * Rounds a channel count to a multiple of `divisor`, never going below minValue nor more than
 * 10% below v: the rule of the TF reference, as torchvision's _make_divisible, so that scaled
 * models have the reference's exact widths.
 */
export function makeDivisible(v: number, divisor = 8, minValue: number = divisor): number {
  let rounded = Math.max(minValue, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

/** flatten(1), as a chain step. */
export const flatten = (t: Tensor): Tensor => t.flatten(1);

/**
 * A classifier's head, as timm's forward_head(x, pre_logits=False): the feature map pooled
 * (global average pooling in most families) and flattened, then the classifier's steps
 * (dropout, the last linear layer, ...).
 */
export function poolAndClassify(features: Tensor, pool: Step, ...classifier: Step[]): Tensor {
  return chain(features, pool, flatten, ...classifier);
}

export interface ConvNormActOptions {
  kernelSize?: number;
  stride?: number;
  /** default (kernelSize - 1) / 2 * dilation: 'same' for odd kernels at stride 1 */
  padding?: number;
  groups?: number;
  dilation?: number;
  /** null: no normalisation (and then a conv bias) */
  norm?: NormFactory | null;
  /** null: no activation */
  activation?: LayerFactory | null;
  /** default: a bias only when there is no normalisation */
  bias?: boolean;
}

/** Conv2d, then a norm layer, then an activation, as torchvision.ops.misc.Conv2dNormActivation. */
export class Conv2dNormActivation extends Sequential {
  readonly outChannels: number;

  constructor(inChannels: number, outChannels: number, o: ConvNormActOptions = {}) {
    const k = o.kernelSize ?? 3;
    const dilation = o.dilation ?? 1;
    const norm = o.norm === undefined ? (c: number) => new BatchNorm2d(c) : o.norm;
    const act = o.activation === undefined ? () => new ReLU() : o.activation;
    const layers: Layer[] = [new Conv2d(inChannels, outChannels, k, {
      stride: o.stride ?? 1,
      padding: o.padding ?? Math.floor((k - 1) / 2) * dilation,
      dilation,
      groups: o.groups ?? 1,
      bias: o.bias ?? norm === null,
    })];
    if (norm) layers.push(norm(outChannels));
    if (act) layers.push(act());
    super(...layers);
    this.outChannels = outChannels;
  }

  override get typeName(): string {
    return 'Conv2dNormActivation';
  }
}

export interface SqueezeExcitationOptions {
  /** the squeeze activation (delta), default ReLU */
  activation?: LayerFactory;
  /** the gate (sigma), default Sigmoid */
  scaleActivation?: LayerFactory;
}

/** Squeeze-and-excitation (Hu et al. 2018) as torchvision.ops.SqueezeExcitation: x * gate(x). */
export class SqueezeExcitation extends Module {
  avgpool = new AdaptiveAvgPool2d(1);
  fc1: Conv2d;
  fc2: Conv2d;
  activation: Layer;
  scale_activation: Layer;

  constructor(inputChannels: number, squeezeChannels: number, o: SqueezeExcitationOptions = {}) {
    super();
    this.fc1 = new Conv2d(inputChannels, squeezeChannels, 1);
    this.fc2 = new Conv2d(squeezeChannels, inputChannels, 1);
    this.activation = (o.activation ?? (() => new ReLU()))();
    this.scale_activation = (o.scaleActivation ?? (() => new Sigmoid()))();
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.avgpool, this.fc1, this.activation, this.fc2, this.scale_activation, (scale) => scale.mul(x));
  }
}

/**
 * torchvision's initialisation of the mobile families: conv weights kaiming-normal (fan_out),
 * conv biases zero, norm layers ones/zeros. Linear layers are left to the caller, whose rule
 * differs by family.
 */
export function initConvAndNorm(model: Module<unknown[], unknown>): void {
  for (const m of model.modules()) {
    if (m instanceof Conv2d) {
      init.kaimingNormal_(m.weight, { mode: 'fan_out' });
      if (m.bias) init.zeros_(m.bias);
    } else if (m instanceof BatchNorm2d && m.weight && m.bias) {
      init.ones_(m.weight);
      init.zeros_(m.bias);
    }
  }
}
