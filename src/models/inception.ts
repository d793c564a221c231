// Inception v1 (GoogLeNet) and Inception v3, as torchvision 0.14 builds them: same attribute
// names (conv1.conv, inception3a.branch2.0.bn, Mixed_6e.branch7x7dbl_3.conv, AuxLogits.fc, ...),
// same auxiliary heads and output order, same truncated-normal initialisation.
import { F, cat, noGrad, type Tensor } from '../engine/index.js';
import {
  AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, Module, Sequential, chain, init, release, type Conv2dOptions,
} from '../nn/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, registerModel, type ModelOptions } from './registry.js';
import { flatten, poolAndClassify } from './blocks.js';
import { checkImageInput } from './checks.js';

export interface InceptionOptions extends ModelOptions {
  /** auxiliary classifiers, whose logits training-mode forward also returns (default true) */
  auxLogits?: boolean;
  /** re-normalise ImageNet-normalised input to the [-1, 1] scaling of the original (Google) weights */
  transformInput?: boolean;
  /** dropout inside GoogLeNet's auxiliary heads (default 0.7) */
  auxDropRate?: number;
  /** torchvision's truncated-normal initialisation (default true) */
  initWeights?: boolean;
}

type Pair = number | [number, number];

/** Conv (no bias) + BN (eps 1e-3) + ReLU: the unit every Inception is made of. */
export class BasicConv2d extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  /** the truncated-normal std that torchvision's init gives this conv, when not the model's default */
  stddev: number | undefined;
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, o: Omit<Conv2dOptions, 'bias'> = {}) {
    super();
    this.conv = new Conv2d(inChannels, outChannels, kernelSize, { ...o, bias: false });
    this.bn = new BatchNorm2d(outChannels, { eps: 0.001 });
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.conv, this.bn, F.relu);
  }
}

/** torch.cat(branches, 1), freeing the branches. */
function concat(branches: Tensor[]): Tensor {
  const out = cat(branches, 1);
  for (const b of branches) b.dispose();
  return out;
}

/**
 * torchvision's _transform_input: maps ImageNet-normalised RGB to the (x - 0.5) / 0.5 scaling the
 * Google-trained weights expect.
 */
function transformInput(x: Tensor): Tensor {
  if (x.ndim !== 4 || x.size(1) !== 3) {
    throw new Error(`inception transformInput: expected input [N, 3, H, W], got [${x.shape.join(', ')}]`);
  }
  const chans = [0, 1, 2].map((c) => {
    const ch = x.select(1, c);
    const u = ch.unsqueeze(1);
    const scaled = u.mul(IMAGENET_STD[c] / 0.5);
    const out = scaled.add((IMAGENET_MEAN[c] - 0.5) / 0.5);
    for (const t of [ch, u, scaled]) t.dispose();
    return out;
  });
  return concat(chans);
}

/** torchvision's init_weights: trunc_normal(std) on every conv and linear weight, BN to (1, 0). */
function initInception(model: Module<unknown[], unknown>, defaultStd: number): void {
  // A BasicConv2d or an aux head's fc may carry its own std (torchvision sets m.stddev).
  const stds = new Map<Module<unknown[], unknown>, number>();
  for (const m of model.modules()) {
    if (m instanceof BasicConv2d && m.stddev !== undefined) stds.set(m.conv, m.stddev);
    if (m instanceof InceptionAuxV3) stds.set(m.fc, 0.001);
  }
  noGrad(() => {
    for (const m of model.modules()) {
      if (m instanceof Conv2d || m instanceof Linear) truncNormal(m.weight, stds.get(m) ?? defaultStd);
      else if (m instanceof BatchNorm2d && m.weight && m.bias) {
        init.ones_(m.weight);
        init.zeros_(m.bias);
      }
    }
  });
}

/**
 * trunc_normal_(w, 0, std, -2, 2). With std <= 0.25 the bounds lie beyond 8 std and cut off less
 * than 1e-15 of the mass, so a clamped normal draw is the same distribution, ten times faster than
 * inverse-CDF sampling (which matters for Inception v3's 27M weights).
 */
function truncNormal(w: Tensor, std: number): void {
  if (std * 8 <= 2) init.normal_(w, 0, std).clamp_(-2, 2);
  else init.truncNormal_(w, 0, std, -2, 2);
}

function checkOptions(name: string, o: InceptionOptions): { numClasses: number; inChannels: number } {
  const numClasses = o.numClasses ?? 1000;
  const inChannels = o.inChannels ?? 3;
  if (o.transformInput && inChannels !== 3) {
    throw new Error(`${name}: transformInput re-normalises RGB input and needs inChannels 3, got ${inChannels}`);
  }
  for (const [k, v] of [['dropRate', o.dropRate], ['auxDropRate', o.auxDropRate]] as const) {
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`${name}: ${k} must be in [0, 1], got ${v}`);
  }
  return { numClasses, inChannels };
}

// ---- GoogLeNet (Inception v1) ------------------------------------------------------------------

export class Inception extends Module {
  branch1: BasicConv2d;
  branch2: Sequential;
  branch3: Sequential;
  branch4: Sequential;
  constructor(inChannels: number, ch1x1: number, ch3x3red: number, ch3x3: number, ch5x5red: number, ch5x5: number, poolProj: number) {
    super();
    this.branch1 = new BasicConv2d(inChannels, ch1x1, 1);
    this.branch2 = new Sequential(new BasicConv2d(inChannels, ch3x3red, 1), new BasicConv2d(ch3x3red, ch3x3, 3, { padding: 1 }));
    // torchvision's "5x5" branch really uses a 3x3 conv (a known quirk kept for weight compatibility)
    this.branch3 = new Sequential(new BasicConv2d(inChannels, ch5x5red, 1), new BasicConv2d(ch5x5red, ch5x5, 3, { padding: 1 }));
    this.branch4 = new Sequential(
      new MaxPool2d(3, { stride: 1, padding: 1, ceilMode: true }),
      new BasicConv2d(inChannels, poolProj, 1),
    );
  }
  forward(x: Tensor): Tensor {
    return concat([this.branch1, this.branch2, this.branch3, this.branch4].map((b) => b.call(x)));
  }
}

export class InceptionAux extends Module {
  conv: BasicConv2d;
  fc1: Linear;
  fc2: Linear;
  dropout: Dropout;
  constructor(inChannels: number, numClasses: number, dropRate = 0.7) {
    super();
    this.conv = new BasicConv2d(inChannels, 128, 1);
    this.fc1 = new Linear(2048, 1024);
    this.fc2 = new Linear(1024, numClasses);
    this.dropout = new Dropout(dropRate);
  }
  forward(x: Tensor): Tensor {
    return chain(x, (t) => F.adaptiveAvgPool2d(t, 4), this.conv, flatten, this.fc1, F.relu, this.dropout, this.fc2);
  }
}

/**
 * What GoogLeNet and Inception v3 share: a trunk that may also run auxiliary heads, then the
 * head (average pool, dropout, fc). Fields are declared, not made here, so that each network's
 * own field order (its state dict's order) stands.
 */
abstract class InceptionClassifier extends Module<[Tensor], Tensor | Tensor[]> {
  abstract avgpool: AdaptiveAvgPool2d;
  abstract dropout: Dropout;
  abstract fc: Linear;
  readonly auxLogits: boolean;
  /** torchvision's transform_input; may be switched after construction, as in PyTorch */
  transformInput: boolean;
  readonly inChannels: number;
  readonly numClasses: number;

  constructor(name: string, o: InceptionOptions) {
    super();
    const { numClasses, inChannels } = checkOptions(name, o);
    this.numClasses = numClasses;
    this.inChannels = inChannels;
    this.auxLogits = o.auxLogits ?? true;
    this.transformInput = o.transformInput ?? false;
  }

  /** The trunk's feature map, and the aux heads' logits when withAux. */
  protected abstract trunk(input: Tensor, withAux: boolean): { features: Tensor; aux: Tensor[] };

  /** The trunk: the feature map before pooling. */
  forwardFeatures(input: Tensor): Tensor {
    return this.trunk(input, false).features;
  }

  /** Global average pool, dropout and the classifier. */
  forwardHead(features: Tensor): Tensor {
    return poolAndClassify(features, this.avgpool, this.dropout, this.fc);
  }

  /** Logits in eval mode; in training with aux heads, [logits, ...aux] as torchvision's GoogLeNetOutputs / InceptionOutputs. */
  forward(input: Tensor): Tensor | Tensor[] {
    const withAux = this.training && this.auxLogits;
    const { features, aux } = this.trunk(input, withAux);
    const logits = this.forwardHead(features);
    release(features, logits);
    return withAux ? [logits, ...aux] : logits;
  }
}

export class GoogLeNet extends InceptionClassifier {
  conv1: BasicConv2d;
  maxpool1 = new MaxPool2d(3, { stride: 2, ceilMode: true });
  conv2: BasicConv2d;
  conv3: BasicConv2d;
  maxpool2 = new MaxPool2d(3, { stride: 2, ceilMode: true });
  inception3a = new Inception(192, 64, 96, 128, 16, 32, 32);
  inception3b = new Inception(256, 128, 128, 192, 32, 96, 64);
  maxpool3 = new MaxPool2d(3, { stride: 2, ceilMode: true });
  inception4a = new Inception(480, 192, 96, 208, 16, 48, 64);
  inception4b = new Inception(512, 160, 112, 224, 24, 64, 64);
  inception4c = new Inception(512, 128, 128, 256, 24, 64, 64);
  inception4d = new Inception(512, 112, 144, 288, 32, 64, 64);
  inception4e = new Inception(528, 256, 160, 320, 32, 128, 128);
  maxpool4 = new MaxPool2d(2, { stride: 2, ceilMode: true });
  inception5a = new Inception(832, 256, 160, 320, 32, 128, 128);
  inception5b = new Inception(832, 384, 192, 384, 48, 128, 128);
  aux1: InceptionAux | null;
  aux2: InceptionAux | null;
  avgpool = new AdaptiveAvgPool2d(1);
  dropout: Dropout;
  fc: Linear;

  constructor(o: InceptionOptions = {}) {
    super('googlenet', o);
    const { numClasses, inChannels } = this;
    this.conv1 = new BasicConv2d(inChannels, 64, 7, { stride: 2, padding: 3 });
    this.conv2 = new BasicConv2d(64, 64, 1);
    this.conv3 = new BasicConv2d(64, 192, 3, { padding: 1 });
    this.aux1 = this.auxLogits ? new InceptionAux(512, numClasses, o.auxDropRate ?? 0.7) : null;
    this.aux2 = this.auxLogits ? new InceptionAux(528, numClasses, o.auxDropRate ?? 0.7) : null;
    this.dropout = new Dropout(o.dropRate ?? 0.2);
    this.fc = new Linear(1024, numClasses);
    if (o.initWeights ?? true) initInception(this as Module<unknown[], unknown>, 0.01);
  }

  /** The trunk through inception5b ([N, 1024, H/32, W/32]), and the aux heads' logits (after 4a and 4d) when asked for. */
  protected trunk(input: Tensor, withAux: boolean): { features: Tensor; aux: Tensor[] } {
    checkImageInput('googlenet', input, this.inChannels, 15);
    // [aux1, aux2]: torchvision names them (aux_logits2, aux_logits1) but fills them in this order
    const aux: Tensor[] = [];
    const auxHead = (head: InceptionAux | null) => (t: Tensor): Tensor => {
      if (withAux && head) aux.push(head.call(t));
      return t;
    };
    const start = this.transformInput ? transformInput(input) : input;
    const features = chain(start, this.conv1, this.maxpool1, this.conv2, this.conv3, this.maxpool2, this.inception3a, this.inception3b,
      this.maxpool3, this.inception4a, auxHead(this.aux1), this.inception4b, this.inception4c, this.inception4d, auxHead(this.aux2),
      this.inception4e, this.maxpool4, this.inception5a, this.inception5b);
    if (start !== input) start.dispose();
    return { features, aux };
  }
}

// ---- Inception v3 ------------------------------------------------------------------------------

const avgPool3 = (x: Tensor): Tensor => F.avgPool2d(x, { kernelSize: 3, stride: 1, padding: 1 });
const maxPool3s2 = (x: Tensor): Tensor => F.maxPool2d(x, { kernelSize: 3, stride: 2 });

export class InceptionA extends Module {
  branch1x1: BasicConv2d;
  branch5x5_1: BasicConv2d;
  branch5x5_2: BasicConv2d;
  branch3x3dbl_1: BasicConv2d;
  branch3x3dbl_2: BasicConv2d;
  branch3x3dbl_3: BasicConv2d;
  branch_pool: BasicConv2d;
  constructor(inChannels: number, poolFeatures: number) {
    super();
    this.branch1x1 = new BasicConv2d(inChannels, 64, 1);
    this.branch5x5_1 = new BasicConv2d(inChannels, 48, 1);
    this.branch5x5_2 = new BasicConv2d(48, 64, 5, { padding: 2 });
    this.branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
    this.branch3x3dbl_2 = new BasicConv2d(64, 96, 3, { padding: 1 });
    this.branch3x3dbl_3 = new BasicConv2d(96, 96, 3, { padding: 1 });
    this.branch_pool = new BasicConv2d(inChannels, poolFeatures, 1);
  }
  forward(x: Tensor): Tensor {
    return concat([
      this.branch1x1.call(x),
      chain(x, this.branch5x5_1, this.branch5x5_2),
      chain(x, this.branch3x3dbl_1, this.branch3x3dbl_2, this.branch3x3dbl_3),
      chain(x, avgPool3, this.branch_pool),
    ]);
  }
}

export class InceptionB extends Module {
  branch3x3: BasicConv2d;
  branch3x3dbl_1: BasicConv2d;
  branch3x3dbl_2: BasicConv2d;
  branch3x3dbl_3: BasicConv2d;
  constructor(inChannels: number) {
    super();
    this.branch3x3 = new BasicConv2d(inChannels, 384, 3, { stride: 2 });
    this.branch3x3dbl_1 = new BasicConv2d(inChannels, 64, 1);
    this.branch3x3dbl_2 = new BasicConv2d(64, 96, 3, { padding: 1 });
    this.branch3x3dbl_3 = new BasicConv2d(96, 96, 3, { stride: 2 });
  }
  forward(x: Tensor): Tensor {
    return concat([
      this.branch3x3.call(x),
      chain(x, this.branch3x3dbl_1, this.branch3x3dbl_2, this.branch3x3dbl_3),
      maxPool3s2(x),
    ]);
  }
}

export class InceptionC extends Module {
  branch1x1: BasicConv2d;
  branch7x7_1: BasicConv2d;
  branch7x7_2: BasicConv2d;
  branch7x7_3: BasicConv2d;
  branch7x7dbl_1: BasicConv2d;
  branch7x7dbl_2: BasicConv2d;
  branch7x7dbl_3: BasicConv2d;
  branch7x7dbl_4: BasicConv2d;
  branch7x7dbl_5: BasicConv2d;
  branch_pool: BasicConv2d;
  constructor(inChannels: number, channels7x7: number) {
    super();
    const c7 = channels7x7;
    const row = { padding: [0, 3] as [number, number] };
    const col = { padding: [3, 0] as [number, number] };
    this.branch1x1 = new BasicConv2d(inChannels, 192, 1);
    this.branch7x7_1 = new BasicConv2d(inChannels, c7, 1);
    this.branch7x7_2 = new BasicConv2d(c7, c7, [1, 7], row);
    this.branch7x7_3 = new BasicConv2d(c7, 192, [7, 1], col);
    this.branch7x7dbl_1 = new BasicConv2d(inChannels, c7, 1);
    this.branch7x7dbl_2 = new BasicConv2d(c7, c7, [7, 1], col);
    this.branch7x7dbl_3 = new BasicConv2d(c7, c7, [1, 7], row);
    this.branch7x7dbl_4 = new BasicConv2d(c7, c7, [7, 1], col);
    this.branch7x7dbl_5 = new BasicConv2d(c7, 192, [1, 7], row);
    this.branch_pool = new BasicConv2d(inChannels, 192, 1);
  }
  forward(x: Tensor): Tensor {
    return concat([
      this.branch1x1.call(x),
      chain(x, this.branch7x7_1, this.branch7x7_2, this.branch7x7_3),
      chain(x, this.branch7x7dbl_1, this.branch7x7dbl_2, this.branch7x7dbl_3, this.branch7x7dbl_4, this.branch7x7dbl_5),
      chain(x, avgPool3, this.branch_pool),
    ]);
  }
}

export class InceptionD extends Module {
  branch3x3_1: BasicConv2d;
  branch3x3_2: BasicConv2d;
  branch7x7x3_1: BasicConv2d;
  branch7x7x3_2: BasicConv2d;
  branch7x7x3_3: BasicConv2d;
  branch7x7x3_4: BasicConv2d;
  constructor(inChannels: number) {
    super();
    this.branch3x3_1 = new BasicConv2d(inChannels, 192, 1);
    this.branch3x3_2 = new BasicConv2d(192, 320, 3, { stride: 2 });
    this.branch7x7x3_1 = new BasicConv2d(inChannels, 192, 1);
    this.branch7x7x3_2 = new BasicConv2d(192, 192, [1, 7], { padding: [0, 3] });
    this.branch7x7x3_3 = new BasicConv2d(192, 192, [7, 1], { padding: [3, 0] });
    this.branch7x7x3_4 = new BasicConv2d(192, 192, 3, { stride: 2 });
  }
  forward(x: Tensor): Tensor {
    return concat([
      chain(x, this.branch3x3_1, this.branch3x3_2),
      chain(x, this.branch7x7x3_1, this.branch7x7x3_2, this.branch7x7x3_3, this.branch7x7x3_4),
      maxPool3s2(x),
    ]);
  }
}

export class InceptionE extends Module {
  branch1x1: BasicConv2d;
  branch3x3_1: BasicConv2d;
  branch3x3_2a: BasicConv2d;
  branch3x3_2b: BasicConv2d;
  branch3x3dbl_1: BasicConv2d;
  branch3x3dbl_2: BasicConv2d;
  branch3x3dbl_3a: BasicConv2d;
  branch3x3dbl_3b: BasicConv2d;
  branch_pool: BasicConv2d;
  constructor(inChannels: number) {
    super();
    const row = { padding: [0, 1] as [number, number] };
    const col = { padding: [1, 0] as [number, number] };
    this.branch1x1 = new BasicConv2d(inChannels, 320, 1);
    this.branch3x3_1 = new BasicConv2d(inChannels, 384, 1);
    this.branch3x3_2a = new BasicConv2d(384, 384, [1, 3], row);
    this.branch3x3_2b = new BasicConv2d(384, 384, [3, 1], col);
    this.branch3x3dbl_1 = new BasicConv2d(inChannels, 448, 1);
    this.branch3x3dbl_2 = new BasicConv2d(448, 384, 3, { padding: 1 });
    this.branch3x3dbl_3a = new BasicConv2d(384, 384, [1, 3], row);
    this.branch3x3dbl_3b = new BasicConv2d(384, 384, [3, 1], col);
    this.branch_pool = new BasicConv2d(inChannels, 192, 1);
  }
  /** Two parallel convs on one input, concatenated (the "expanded filter bank" of Inception v3). */
  static #split(t: Tensor, a: BasicConv2d, b: BasicConv2d): Tensor {
    return concat([a.call(t), b.call(t)]);
  }
  forward(x: Tensor): Tensor {
    return concat([
      this.branch1x1.call(x),
      chain(x, this.branch3x3_1, (t) => InceptionE.#split(t, this.branch3x3_2a, this.branch3x3_2b)),
      chain(x, this.branch3x3dbl_1, this.branch3x3dbl_2, (t) => InceptionE.#split(t, this.branch3x3dbl_3a, this.branch3x3dbl_3b)),
      chain(x, avgPool3, this.branch_pool),
    ]);
  }
}

export class InceptionAuxV3 extends Module {
  conv0: BasicConv2d;
  conv1: BasicConv2d;
  fc: Linear;
  constructor(inChannels: number, numClasses: number) {
    super();
    this.conv0 = new BasicConv2d(inChannels, 128, 1);
    this.conv1 = new BasicConv2d(128, 768, 5);
    this.conv1.stddev = 0.01;
    this.fc = new Linear(768, numClasses);
  }
  forward(x: Tensor): Tensor {
    return chain(x, (t) => F.avgPool2d(t, { kernelSize: 5, stride: 3 }), this.conv0, this.conv1, (t) => F.adaptiveAvgPool2d(t, 1), flatten, this.fc);
  }
}

export class Inception3 extends InceptionClassifier {
  Conv2d_1a_3x3: BasicConv2d;
  Conv2d_2a_3x3 = new BasicConv2d(32, 32, 3);
  Conv2d_2b_3x3 = new BasicConv2d(32, 64, 3, { padding: 1 });
  maxpool1 = new MaxPool2d(3, { stride: 2 });
  Conv2d_3b_1x1 = new BasicConv2d(64, 80, 1);
  Conv2d_4a_3x3 = new BasicConv2d(80, 192, 3);
  maxpool2 = new MaxPool2d(3, { stride: 2 });
  Mixed_5b = new InceptionA(192, 32);
  Mixed_5c = new InceptionA(256, 64);
  Mixed_5d = new InceptionA(288, 64);
  Mixed_6a = new InceptionB(288);
  Mixed_6b = new InceptionC(768, 128);
  Mixed_6c = new InceptionC(768, 160);
  Mixed_6d = new InceptionC(768, 160);
  Mixed_6e = new InceptionC(768, 192);
  AuxLogits: InceptionAuxV3 | null;
  Mixed_7a = new InceptionD(768);
  Mixed_7b = new InceptionE(1280);
  Mixed_7c = new InceptionE(2048);
  avgpool = new AdaptiveAvgPool2d(1);
  dropout: Dropout;
  fc: Linear;

  constructor(o: InceptionOptions = {}) {
    super('inception_v3', o);
    const { numClasses, inChannels } = this;
    this.Conv2d_1a_3x3 = new BasicConv2d(inChannels, 32, 3, { stride: 2 });
    this.AuxLogits = this.auxLogits ? new InceptionAuxV3(768, numClasses) : null;
    this.dropout = new Dropout(o.dropRate ?? 0.5);
    this.fc = new Linear(2048, numClasses);
    if (o.initWeights ?? true) initInception(this as Module<unknown[], unknown>, 0.1);
  }

  /** The trunk through Mixed_7c ([N, 2048, 8, 8] at 299 px), and the aux head's logits (after Mixed_6e) when asked for. */
  protected trunk(input: Tensor, withAux: boolean): { features: Tensor; aux: Tensor[] } {
    checkImageInput('inception_v3', input, this.inChannels, 75);
    // checked before the trunk runs: the aux head's 5x5 conv reads a 17x17 Mixed_6e map
    if (withAux && (input.size(2) < 299 || input.size(3) < 299)) {
      throw new Error(`inception_v3: training with the aux head needs input of at least 299x299 (a 17x17 Mixed_6e map), got ${input.size(2)}x${input.size(3)}; ` +
        'train at 299 px or build with auxLogits: false');
    }
    const aux: Tensor[] = [];
    const auxHead = (t: Tensor): Tensor => {
      if (withAux && this.AuxLogits) aux.push(this.AuxLogits.call(t));
      return t;
    };
    const start = this.transformInput ? transformInput(input) : input;
    const features = chain(start, this.Conv2d_1a_3x3, this.Conv2d_2a_3x3, this.Conv2d_2b_3x3, this.maxpool1, this.Conv2d_3b_1x1,
      this.Conv2d_4a_3x3, this.maxpool2, this.Mixed_5b, this.Mixed_5c, this.Mixed_5d, this.Mixed_6a, this.Mixed_6b,
      this.Mixed_6c, this.Mixed_6d, this.Mixed_6e, auxHead, this.Mixed_7a, this.Mixed_7b, this.Mixed_7c);
    if (start !== input) start.dispose();
    return { features, aux };
  }
}

export const googlenet = (o: InceptionOptions = {}): GoogLeNet => new GoogLeNet(o);
export const inceptionV3 = (o: InceptionOptions = {}): Inception3 => new Inception3(o);

registerModel<InceptionOptions>({
  name: 'googlenet',
  config: {
    family: 'inception', inputSize: [3, 224, 224], minInputSize: 15, mean: IMAGENET_MEAN, std: IMAGENET_STD,
    interpolation: 'bilinear', cropPct: 0.875, torchvision: true, paper: 'https://arxiv.org/abs/1409.4842',
  },
  build: googlenet,
});

registerModel<InceptionOptions>({
  name: 'inception_v3',
  config: {
    family: 'inception', inputSize: [3, 299, 299], minInputSize: 75, mean: IMAGENET_MEAN, std: IMAGENET_STD,
    interpolation: 'bilinear', cropPct: 299 / 342, torchvision: true, paper: 'https://arxiv.org/abs/1512.00567',
  },
  build: inceptionV3,
});
