// EfficientNet B0-B7 (Tan & Le 2019) and EfficientNetV2 S/M/L (Tan & Le 2021), with
// torchvision 0.14's module names, so its state dicts load by name.
//
// A model is a stage table decoded by one builder. B1-B7 are not written out: they are B0's
// table scaled by the compound coefficients (width, depth) with the reference's rounding rules
// (channels: makeDivisible(c * width, 8); repeats: ceil(n * depth)), which is what makes their
// parameter counts equal torchvision's.
import type { Tensor } from '../engine/index.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Dropout, Linear, Module, Sequential, SiLU, StochasticDepth, addShortcut, chain, init, type Layer,
} from '../nn/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, registerModel, type ModelConfig, type ModelOptions } from './registry.js';
import { Conv2dNormActivation, SqueezeExcitation, initConvAndNorm, makeDivisible, poolAndClassify, type NormFactory } from './blocks.js';
import { checkImageInput } from './checks.js';

/** One row of a stage table (Table 1 of the EfficientNet paper, Table 4 of EfficientNetV2). */
export interface StageSpec {
  /** 'mbconv': expand 1x1, depthwise kxk, squeeze-excitation, project; 'fused': expand kxk, project */
  block: 'mbconv' | 'fused';
  expandRatio: number;
  kernel: number;
  /** the stride of the stage's first block (the others have stride 1) */
  stride: number;
  inChannels: number;
  outChannels: number;
  numLayers: number;
}

const mb = (expandRatio: number, kernel: number, stride: number, inChannels: number, outChannels: number, numLayers: number): StageSpec =>
  ({ block: 'mbconv', expandRatio, kernel, stride, inChannels, outChannels, numLayers });
const fused = (expandRatio: number, kernel: number, stride: number, inChannels: number, outChannels: number, numLayers: number): StageSpec =>
  ({ block: 'fused', expandRatio, kernel, stride, inChannels, outChannels, numLayers });

/** EfficientNet-B0's stages; every B variant is this table, compound-scaled. */
export const EFFICIENTNET_B0_STAGES: readonly StageSpec[] = Object.freeze([
  mb(1, 3, 1, 32, 16, 1),
  mb(6, 3, 2, 16, 24, 2),
  mb(6, 5, 2, 24, 40, 2),
  mb(6, 3, 2, 40, 80, 3),
  mb(6, 5, 1, 80, 112, 3),
  mb(6, 5, 2, 112, 192, 4),
  mb(6, 3, 1, 192, 320, 1),
]);

export const EFFICIENTNET_V2_STAGES: Readonly<Record<'s' | 'm' | 'l', readonly StageSpec[]>> = Object.freeze({
  s: [fused(1, 3, 1, 24, 24, 2), fused(4, 3, 2, 24, 48, 4), fused(4, 3, 2, 48, 64, 4),
    mb(4, 3, 2, 64, 128, 6), mb(6, 3, 1, 128, 160, 9), mb(6, 3, 2, 160, 256, 15)],
  m: [fused(1, 3, 1, 24, 24, 3), fused(4, 3, 2, 24, 48, 5), fused(4, 3, 2, 48, 80, 5),
    mb(4, 3, 2, 80, 160, 7), mb(6, 3, 1, 160, 176, 14), mb(6, 3, 2, 176, 304, 18), mb(6, 3, 1, 304, 512, 5)],
  l: [fused(1, 3, 1, 32, 32, 4), fused(4, 3, 2, 32, 64, 7), fused(4, 3, 2, 64, 96, 7),
    mb(4, 3, 2, 96, 192, 10), mb(6, 3, 1, 192, 224, 19), mb(6, 3, 2, 224, 384, 25), mb(6, 3, 1, 384, 640, 7)],
});

/** Widths to multiples of 8 and repeats rounded up, as the reference (and torchvision) scale them. */
export function scaleStages(stages: readonly StageSpec[], widthMult: number, depthMult: number): StageSpec[] {
  for (const [what, v] of [['widthMult', widthMult], ['depthMult', depthMult]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`scaleStages: ${what} must be a positive number, got ${v}`);
  }
  return stages.map((s) => ({
    ...s,
    inChannels: makeDivisible(s.inChannels * widthMult, 8),
    outChannels: makeDivisible(s.outChannels * widthMult, 8),
    numLayers: Math.ceil(s.numLayers * depthMult),
  }));
}

/** Everything the builder needs: the decoded architecture, not the user's options. */
export interface EfficientNetArch {
  /** the name errors and toString use */
  name: string;
  /** already scaled */
  stages: StageSpec[];
  /** the width of the last 1x1 conv; null: 4 x the last stage's width (V1) */
  lastChannel: number | null;
  numClasses: number;
  inChannels: number;
  dropout: number;
  stochasticDepthProb: number;
  bnEps: number;
  bnMomentum: number;
  minInputSize: number;
  zeroInitResidual?: boolean;
}

type Norm = NormFactory;

/** One block's settings after the stage has fixed its input width and stride. */
interface BlockSpec extends StageSpec {
  sdProb: number;
}

/** An EfficientNet block: its layers, then stochastic depth and the identity shortcut where the shapes allow. */
abstract class EfficientBlock extends Module {
  block: Sequential;
  stochastic_depth: StochasticDepth;
  readonly useResConnect: boolean;
  readonly outChannels: number;

  constructor(c: BlockSpec, layers: Layer[]) {
    super();
    if (c.stride !== 1 && c.stride !== 2) throw new RangeError(`EfficientNet block: stride must be 1 or 2, got ${c.stride}`);
    this.useResConnect = c.stride === 1 && c.inChannels === c.outChannels;
    this.block = new Sequential(...layers);
    this.stochastic_depth = new StochasticDepth(c.sdProb, 'row');
    this.outChannels = c.outChannels;
  }

  forward(x: Tensor): Tensor {
    return this.useResConnect ? chain(x, this.block, this.stochastic_depth, addShortcut(x)) : this.block.call(x);
  }
}

/** Inverted residual with squeeze-excitation (MBConv), as torchvision's MBConv. */
export class MBConv extends EfficientBlock {
  constructor(c: BlockSpec, norm: Norm) {
    const act = (): Layer => new SiLU();
    const expanded = makeDivisible(c.inChannels * c.expandRatio, 8);
    const layers: Layer[] = [];
    if (expanded !== c.inChannels) layers.push(new Conv2dNormActivation(c.inChannels, expanded, { kernelSize: 1, norm, activation: act }));
    layers.push(new Conv2dNormActivation(expanded, expanded, { kernelSize: c.kernel, stride: c.stride, groups: expanded, norm, activation: act }));
    // the squeeze width is a quarter of the block's input width, not of the expanded width
    layers.push(new SqueezeExcitation(expanded, Math.max(1, Math.floor(c.inChannels / 4)), { activation: act }));
    layers.push(new Conv2dNormActivation(expanded, c.outChannels, { kernelSize: 1, norm, activation: null }));
    super(c, layers);
  }
}

/** Fused MBConv (EfficientNetV2): one kxk conv does expansion and the spatial work. */
export class FusedMBConv extends EfficientBlock {
  constructor(c: BlockSpec, norm: Norm) {
    const act = (): Layer => new SiLU();
    const expanded = makeDivisible(c.inChannels * c.expandRatio, 8);
    const spatial = { kernelSize: c.kernel, stride: c.stride, norm, activation: act };
    const layers: Layer[] = expanded !== c.inChannels
      ? [new Conv2dNormActivation(c.inChannels, expanded, spatial),
        new Conv2dNormActivation(expanded, c.outChannels, { kernelSize: 1, norm, activation: null })]
      : [new Conv2dNormActivation(c.inChannels, c.outChannels, spatial)];
    super(c, layers);
  }
}

/** EfficientNet V1 and V2: features (stem, stages, head conv), avgpool, classifier (dropout, linear). */
export class EfficientNet extends Module {
  features: Sequential;
  avgpool = new AdaptiveAvgPool2d(1);
  classifier: Sequential;
  readonly modelName: string;
  readonly inChannels: number;
  readonly minInputSize: number;
  readonly numFeatures: number;

  constructor(a: EfficientNetArch) {
    super();
    if (a.stages.length === 0) throw new Error(`${a.name}: the stage table is empty`);
    const norm: Norm = (c) => new BatchNorm2d(c, { eps: a.bnEps, momentum: a.bnMomentum });
    const layers: Layer[] = [new Conv2dNormActivation(a.inChannels, a.stages[0].inChannels, { kernelSize: 3, stride: 2, norm, activation: () => new SiLU() })];
    const total = a.stages.reduce((n, s) => n + s.numLayers, 0);
    let blockId = 0;
    for (const s of a.stages) {
      const stage: Layer[] = [];
      for (let i = 0; i < s.numLayers; i++) {
        const first = i === 0;
        // stochastic depth grows linearly with the block's depth in the whole network
        const spec: BlockSpec = { ...s, inChannels: first ? s.inChannels : s.outChannels, stride: first ? s.stride : 1, sdProb: (a.stochasticDepthProb * blockId) / total };
        stage.push(s.block === 'mbconv' ? new MBConv(spec, norm) : new FusedMBConv(spec, norm));
        blockId++;
      }
      layers.push(new Sequential(...stage));
    }
    const lastIn = a.stages[a.stages.length - 1].outChannels;
    this.numFeatures = a.lastChannel ?? 4 * lastIn;
    layers.push(new Conv2dNormActivation(lastIn, this.numFeatures, { kernelSize: 1, norm, activation: () => new SiLU() }));
    this.features = new Sequential(...layers);
    this.classifier = new Sequential(new Dropout(a.dropout), new Linear(this.numFeatures, a.numClasses));
    this.modelName = a.name;
    this.inChannels = a.inChannels;
    this.minInputSize = a.minInputSize;
    initEfficientNet(this, a.zeroInitResidual ?? false);
  }

  /** The stem, the stages and the last 1x1 conv: the [N, numFeatures, H/32, W/32] map before pooling. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageInput(this.modelName, x, this.inChannels, this.minInputSize);
    return this.features.call(x);
  }

  /** Global average pool, then the classifier (dropout, linear). */
  forwardHead(features: Tensor): Tensor {
    return poolAndClassify(features, this.avgpool, this.classifier);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

/** torchvision's rule: kaiming-normal convs, unit BN, Linear uniform(+-1/sqrt(out_features)). */
function initEfficientNet(model: EfficientNet, zeroInitResidual: boolean): void {
  initConvAndNorm(model);
  for (const m of model.modules()) {
    if (!(m instanceof Linear)) continue;
    const range = 1 / Math.sqrt(m.outFeatures);
    init.uniform_(m.weight, -range, range);
    if (m.bias) init.zeros_(m.bias);
  }
  if (!zeroInitResidual) return;
  // each residual branch then starts as the identity (Goyal et al. 2017)
  for (const m of model.modules()) {
    if (!((m instanceof MBConv || m instanceof FusedMBConv) && m.useResConnect)) continue;
    const bn = m.block.at(-1).children()[1];
    if (bn instanceof BatchNorm2d && bn.weight) init.zeros_(bn.weight);
  }
}

// ---- the named variants -------------------------------------------------------------------------

export interface EfficientNetOptions extends ModelOptions {
  /** width multiplier; default the variant's (B variants only) */
  widthMult?: number;
  /** depth multiplier; default the variant's (B variants only) */
  depthMult?: number;
}

export interface EfficientNetVariant {
  name: string;
  widthMult: number;
  depthMult: number;
  /** the paper's resolution for B variants, torchvision's evaluation size for V2 */
  resolution: number;
  dropout: number;
  bnEps: number;
  bnMomentum: number;
}

// torchvision keeps PyTorch's BN defaults for B0-B4 and TF's (eps 1e-3, momentum 0.01) for the
// B5-B7 ports from TF checkpoints.
const b = (name: string, widthMult: number, depthMult: number, resolution: number, dropout: number, tfBn = false): EfficientNetVariant =>
  ({ name, widthMult, depthMult, resolution, dropout, bnEps: tfBn ? 1e-3 : 1e-5, bnMomentum: tfBn ? 0.01 : 0.1 });

export const EFFICIENTNET_B_VARIANTS: readonly EfficientNetVariant[] = Object.freeze([
  b('efficientnet_b0', 1.0, 1.0, 224, 0.2),
  b('efficientnet_b1', 1.0, 1.1, 240, 0.2),
  b('efficientnet_b2', 1.1, 1.2, 260, 0.3),
  b('efficientnet_b3', 1.2, 1.4, 300, 0.3),
  b('efficientnet_b4', 1.4, 1.8, 380, 0.4),
  b('efficientnet_b5', 1.6, 2.2, 456, 0.4, true),
  b('efficientnet_b6', 1.8, 2.6, 528, 0.5, true),
  b('efficientnet_b7', 2.0, 3.1, 600, 0.5, true),
]);

const DEFAULT_DROP_PATH = 0.2;

function positive(name: string, key: string, v: number | undefined, dflt: number, allowZero = false): number {
  const x = v ?? dflt;
  if (!(Number.isFinite(x) && (x > 0 || (allowZero && x === 0)))) throw new RangeError(`${name}: ${key} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(v)}`);
  return x;
}

function probability(name: string, key: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0 && x <= 1)) throw new RangeError(`${name}: ${key} must be in [0, 1], got ${String(v)}`);
  return x;
}

function count(name: string, key: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(Number.isInteger(x) && x > 0)) throw new RangeError(`${name}: ${key} must be a positive integer, got ${String(v)}`);
  return x;
}

/** The shared options of every variant, checked. */
export function efficientnetCommonArch(name: string, o: ModelOptions, defaultDropout: number):
  Pick<EfficientNetArch, 'numClasses' | 'inChannels' | 'dropout' | 'stochasticDepthProb' | 'zeroInitResidual'> {
  return {
    numClasses: count(name, 'numClasses', o.numClasses, 1000),
    inChannels: count(name, 'inChannels', o.inChannels, 3),
    dropout: probability(name, 'dropRate', o.dropRate, defaultDropout),
    stochasticDepthProb: probability(name, 'dropPathRate', o.dropPathRate, DEFAULT_DROP_PATH),
    zeroInitResidual: o.zeroInitResidual ?? false,
  };
}

/** Builds a B-series model: B0's table scaled by the variant's (or the options') multipliers. */
export function efficientnetB(v: EfficientNetVariant, o: EfficientNetOptions = {}): EfficientNet {
  const width = positive(v.name, 'widthMult', o.widthMult, v.widthMult);
  const depth = positive(v.name, 'depthMult', o.depthMult, v.depthMult);
  return new EfficientNet({
    name: v.name,
    stages: scaleStages(EFFICIENTNET_B0_STAGES, width, depth),
    lastChannel: null,
    bnEps: v.bnEps,
    bnMomentum: v.bnMomentum,
    minInputSize: 1,
    ...efficientnetCommonArch(v.name, o, v.dropout),
  });
}

const V2_DROPOUT = { s: 0.2, m: 0.3, l: 0.4 } as const;

/** Builds EfficientNetV2-S/M/L: Fused-MBConv stages, then MBConv stages, BN eps 1e-3. */
export function efficientnetV2(size: 's' | 'm' | 'l', o: ModelOptions = {}): EfficientNet {
  const name = `efficientnet_v2_${size}`;
  return new EfficientNet({
    name,
    stages: scaleStages(EFFICIENTNET_V2_STAGES[size], 1, 1),
    lastChannel: 1280,
    bnEps: 1e-3,
    bnMomentum: 0.1,
    // torchvision's weights meta gives V2 a minimum size of 33
    minInputSize: 33,
    ...efficientnetCommonArch(name, o, V2_DROPOUT[size]),
  });
}

const variant = (i: number) => (o: EfficientNetOptions = {}): EfficientNet => efficientnetB(EFFICIENTNET_B_VARIANTS[i], o);
export const efficientnetB0 = variant(0);
export const efficientnetB1 = variant(1);
export const efficientnetB2 = variant(2);
export const efficientnetB3 = variant(3);
export const efficientnetB4 = variant(4);
export const efficientnetB5 = variant(5);
export const efficientnetB6 = variant(6);
export const efficientnetB7 = variant(7);
export const efficientnetV2S = (o: ModelOptions = {}): EfficientNet => efficientnetV2('s', o);
export const efficientnetV2M = (o: ModelOptions = {}): EfficientNet => efficientnetV2('m', o);
export const efficientnetV2L = (o: ModelOptions = {}): EfficientNet => efficientnetV2('l', o);

// ---- registration ---------------------------------------------------------------------------------

const PAPER_V1 = 'Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019 (arXiv:1905.11946)';
const PAPER_V2 = 'Tan & Le, EfficientNetV2: Smaller Models and Faster Training, ICML 2021 (arXiv:2104.00298)';

// Evaluation transforms of torchvision 0.14's DEFAULT weights (crop / resize, interpolation).
// B1's DEFAULT is IMAGENET1K_V2 (bilinear, 240/255). Input sizes of B variants are the paper's
// resolutions; torchvision evaluates its B2 weights at 288 rather than 260.
const EVAL: Record<string, { interpolation: 'bilinear' | 'bicubic'; cropPct: number }> = {
  efficientnet_b0: { interpolation: 'bicubic', cropPct: 224 / 256 },
  efficientnet_b1: { interpolation: 'bilinear', cropPct: 240 / 255 },
  efficientnet_b2: { interpolation: 'bicubic', cropPct: 1 },
  efficientnet_b3: { interpolation: 'bicubic', cropPct: 300 / 320 },
  efficientnet_b4: { interpolation: 'bicubic', cropPct: 380 / 384 },
  efficientnet_b5: { interpolation: 'bicubic', cropPct: 1 },
  efficientnet_b6: { interpolation: 'bicubic', cropPct: 1 },
  efficientnet_b7: { interpolation: 'bicubic', cropPct: 1 },
};

function config(family: string, size: number, minInputSize: number, interpolation: 'bilinear' | 'bicubic', cropPct: number, paper: string,
  mean = IMAGENET_MEAN, std = IMAGENET_STD): ModelConfig {
  return { family, inputSize: [3, size, size], minInputSize, mean, std, interpolation, cropPct, torchvision: true, paper };
}

for (const v of EFFICIENTNET_B_VARIANTS) {
  const e = EVAL[v.name];
  registerModel<EfficientNetOptions>({
    name: v.name,
    config: config('efficientnet', v.resolution, 1, e.interpolation, e.cropPct, PAPER_V1),
    build: (o) => efficientnetB(v, o),
  });
}
registerModel({ name: 'efficientnet_v2_s', config: config('efficientnet', 384, 33, 'bilinear', 1, PAPER_V2), build: efficientnetV2S });
registerModel({ name: 'efficientnet_v2_m', config: config('efficientnet', 480, 33, 'bilinear', 1, PAPER_V2), build: efficientnetV2M });
// the V2-L weights are ported from TF and expect inputs scaled to [-1, 1]
registerModel({
  name: 'efficientnet_v2_l',
  config: config('efficientnet', 480, 33, 'bicubic', 1, PAPER_V2, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
  build: efficientnetV2L,
});
