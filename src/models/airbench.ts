// Airbench's network (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU",
// arXiv:2404.00498): the fastest-to-accuracy small CNN we know of, for training on a CPU budget.
//
// A frozen 2x2 "whitening" convolution, whose filters are the eigenvectors of the training
// images' 2x2 patch second moment (their covariance, the images being normalised) scaled by 1/sqrt(eigenvalue) and their negatives, then GELU; three
// groups of conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU; a 3x3 max-pool and a
// bias-free linear head whose logits are scaled by 1/9. Pooling right after the first conv of
// each group is what makes it cheap: every other convolution runs at a quarter of the pixels.
//
// The whitening filters come from data: the Trainer calls initFromData with normalised training
// images before the first step (as airbench does); built without data they are the whitening
// of white noise, [I; -I]. Names (whiten, block1.conv1, block1.norm1, ..., head) are those of
// the reference in test/helpers/ref_models.py.
import { F, noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import { BatchNorm2d, Conv2d, GELU, Linear, MaxPool2d, Module, addShortcut, chain, release } from '../nn/index.js';
import { registerModel, type ModelConfig, type ModelOptions } from './registry.js';
import { checkImageInput } from './checks.js';
import { flatten } from './blocks.js';
import { CIFAR_MEAN, CIFAR_STD } from './cifar_resnet.js';

export interface AirbenchOptions extends ModelOptions {
  /** channels of the three conv groups (airbench94: [64, 256, 256]) */
  widths?: [number, number, number];
  /** BatchNorm momentum, PyTorch's convention (airbench: 0.4) */
  bnMomentum?: number;
  /**
   * a third conv3x3 - BN in each group, its output added to the group's first activation before
   * the last GELU (airbench96's group); default false (airbench94's two convs)
   */
  residual?: boolean;
}

const WHITEN_KERNEL = 2;
/** the smallest input: 2x2 whitening, three 2x pools, then the 3x3 head pool */
export const AIRBENCH_MIN_INPUT = 25;

/**
 * conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU; with residual, airbench96's group:
 * y = GELU(BN(pool(conv(x)))), GELU(y + BN(conv(GELU(BN(conv(y)))))).
 */
export class ConvGroup extends Module {
  conv1: Conv2d;
  pool: MaxPool2d;
  norm1: BatchNorm2d;
  conv2: Conv2d;
  norm2: BatchNorm2d;
  conv3?: Conv2d;
  norm3?: BatchNorm2d;
  activ: GELU;

  constructor(cin: number, cout: number, momentum: number, residual = false) {
    super();
    this.conv1 = new Conv2d(cin, cout, 3, { padding: 1, bias: false });
    this.pool = new MaxPool2d(2);
    this.norm1 = new BatchNorm2d(cout, { momentum });
    this.conv2 = new Conv2d(cout, cout, 3, { padding: 1, bias: false });
    this.norm2 = new BatchNorm2d(cout, { momentum });
    if (residual) {
      this.conv3 = new Conv2d(cout, cout, 3, { padding: 1, bias: false });
      this.norm3 = new BatchNorm2d(cout, { momentum });
    }
    this.activ = new GELU();
  }

  forward(x: Tensor): Tensor {
    const head = [this.conv1, this.pool, this.norm1, this.activ];
    if (!this.conv3 || !this.norm3) return chain(x, ...head, this.conv2, this.norm2, this.activ);
    const y = chain(x, ...head);
    const out = chain(y, this.conv2, this.norm2, this.activ, this.conv3, this.norm3, addShortcut(y), this.activ);
    release(y, out);
    return out;
  }
}

export class Airbench extends Module {
  whiten: Conv2d;
  act: GELU;
  block1: ConvGroup;
  block2: ConvGroup;
  block3: ConvGroup;
  pool: MaxPool2d;
  head: Linear;
  readonly inChannels: number;
  readonly numClasses: number;
  readonly widths: [number, number, number];

  constructor(o: AirbenchOptions = {}, readonly modelName = 'airbench') {
    super();
    this.inChannels = o.inChannels ?? 3;
    this.numClasses = o.numClasses ?? 10;
    this.widths = o.widths ?? [64, 256, 256];
    if (this.widths.length !== 3 || !this.widths.every((w) => Number.isInteger(w) && w > 0)) {
      throw new RangeError(`${modelName}: widths must be three positive integers, got ${JSON.stringify(o.widths)}`);
    }
    if (o.residual !== undefined && typeof o.residual !== 'boolean') {
      throw new TypeError(`${modelName}: residual must be true or false, got ${JSON.stringify(o.residual)}`);
    }
    const momentum = o.bnMomentum ?? 0.4;
    const d = this.inChannels * WHITEN_KERNEL * WHITEN_KERNEL;
    this.whiten = new Conv2d(this.inChannels, 2 * d, WHITEN_KERNEL, { bias: false });
    this.whiten.weight.requiresGrad = false;
    this.setWhitening(identityWhitening(this.inChannels));
    this.act = new GELU();
    const [w1, w2, w3] = this.widths;
    const residual = o.residual ?? false;
    this.block1 = new ConvGroup(2 * d, w1, momentum, residual);
    this.block2 = new ConvGroup(w1, w2, momentum, residual);
    this.block3 = new ConvGroup(w2, w3, momentum, residual);
    this.pool = new MaxPool2d(3);
    this.head = new Linear(w3, this.numClasses, { bias: false });
  }

  /** Sets the whitening filters from normalised images [N, C, H, W] (a few thousand suffice). */
  initFromData(images: Tensor): void {
    if (images.ndim !== 4 || images.size(1) !== this.inChannels) {
      throw new Error(`${this.modelName}.initFromData: expected normalised images [N, ${this.inChannels}, H, W], found [${images.shape.join(', ')}]`);
    }
    this.setWhitening(tidy(() => whiteningFilters(images, WHITEN_KERNEL)));
  }

  /** The [2d, C, k, k] filters: eigenvectors over sqrt(eigenvalue), then their negatives. */
  private setWhitening(filters: { vectors: Float64Array; values: Float64Array }): void {
    const d = filters.values.length;
    const w = new Float32Array(2 * d * d);
    for (let k = 0; k < d; k++) {
      const scale = 1 / Math.sqrt(filters.values[k] + WHITEN_EPS);
      for (let a = 0; a < d; a++) {
        w[k * d + a] = filters.vectors[a * d + k] * scale;
        w[(k + d) * d + a] = -filters.vectors[a * d + k] * scale;
      }
    }
    noGrad(() => tidy(() => {
      this.whiten.weight.copy_(tensor(w, { shape: this.whiten.weight.shape }));
    }));
  }

  /** The whitening and the three conv groups: the [N, widths[2], H/8, W/8] map before the head's pool. */
  forwardFeatures(x: Tensor): Tensor {
    checkImageInput(this.modelName, x, this.inChannels, AIRBENCH_MIN_INPUT);
    return chain(x, this.whiten, this.act, this.block1, this.block2, this.block3);
  }

  /** The 3x3 max-pool, the linear head and airbench's 1/9 logit scale. */
  forwardHead(features: Tensor): Tensor {
    return chain(features, this.pool, flatten, this.head, (t) => t.mul(1 / 9));
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

/** airbench's eps on the eigenvalues, which keeps near-flat directions from blowing up */
const WHITEN_EPS = 5e-4;

/** Eigen-decomposition of the identity: a data-free stand-in for the whitening. */
function identityWhitening(c: number): { vectors: Float64Array; values: Float64Array } {
  const d = c * WHITEN_KERNEL * WHITEN_KERNEL;
  const vectors = new Float64Array(d * d);
  for (let i = 0; i < d; i++) vectors[i * d + i] = 1;
  return { vectors, values: new Float64Array(d).fill(1) };
}

/**
 * The eigen-decomposition of the second moment of the k x k patches of `images` at every
 * position (airbench's estimate; normalised images have mean ~0, so it is their covariance):
 * vectors[a * d + j] is component a of eigenvector j, values decrease, and each eigenvector's
 * largest component is positive (a sign convention, so that the filters are reproducible).
 */
export function whiteningFilters(images: Tensor, k: number): { vectors: Float64Array; values: Float64Array } {
  if (images.ndim !== 4 || images.size(2) < k || images.size(3) < k) {
    throw new Error(`whiteningFilters: expected images [N, C, H, W] with H, W >= ${k}, found [${images.shape.join(', ')}]`);
  }
  const c = images.size(1);
  const d = c * k * k;
  // a convolution with one-hot filters lays each patch out along the channels, in (c, kh, kw) order
  const eye = tensor(Float32Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0)), { shape: [d, c, k, k] });
  const patches = F.conv2d(images.float().contiguous(), eye).permute([0, 2, 3, 1]).reshape([-1, d]).double();
  const moment = patches.transpose(0, 1).matmul(patches).div(patches.size(0)).toTypedArray() as Float64Array;
  const eig = symmetricEigen(moment, d);
  for (let j = 0; j < d; j++) {
    let big = 0;
    for (let a = 0; a < d; a++) if (Math.abs(eig.vectors[a * d + j]) > Math.abs(eig.vectors[big * d + j])) big = a;
    if (eig.vectors[big * d + j] < 0) for (let a = 0; a < d; a++) eig.vectors[a * d + j] = -eig.vectors[a * d + j];
  }
  return eig;
}

/** Eigenvalues (decreasing) and eigenvectors of a symmetric d x d matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: ArrayLike<number>, d: number): { vectors: Float64Array; values: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 64; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) rotate(a, v, d, p, q);
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => a[j * d + j] - a[i * d + i]);
  const values = Float64Array.from(order, (i) => a[i * d + i]);
  const vectors = new Float64Array(d * d);
  order.forEach((src, dst) => { for (let r = 0; r < d; r++) vectors[r * d + dst] = v[r * d + src]; });
  return { vectors, values };
}

/** One Jacobi rotation zeroing a[p][q] (a = J^T a J, v = v J). */
function rotate(a: Float64Array, v: Float64Array, d: number, p: number, q: number): void {
  const apq = a[p * d + q];
  if (apq === 0) return;
  const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
  const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < d; k++) {
    const akp = a[k * d + p];
    const akq = a[k * d + q];
    a[k * d + p] = c * akp - s * akq;
    a[k * d + q] = s * akp + c * akq;
  }
  for (let k = 0; k < d; k++) {
    const apk = a[p * d + k];
    const aqk = a[q * d + k];
    a[p * d + k] = c * apk - s * aqk;
    a[q * d + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < d; k++) {
    const vkp = v[k * d + p];
    const vkq = v[k * d + q];
    v[k * d + p] = c * vkp - s * vkq;
    v[k * d + q] = s * vkp + c * vkq;
  }
}

const PAPER = 'Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU, arXiv:2404.00498';
const CONFIG: ModelConfig = {
  family: 'airbench',
  inputSize: [3, 32, 32],
  minInputSize: AIRBENCH_MIN_INPUT,
  mean: CIFAR_MEAN,
  std: CIFAR_STD,
  interpolation: 'bilinear',
  cropPct: 1,
  torchvision: false,
  paper: `${PAPER} (airbench94)`,
};

/** airbench94's widths, for CIFAR-10 */
export const airbench94 = (o: AirbenchOptions = {}): Airbench => new Airbench({ widths: [64, 256, 256], ...o }, 'airbench94');
/** airbench96's network, for CIFAR-10: wider groups of three convs with a residual */
export const airbench96 = (o: AirbenchOptions = {}): Airbench => new Airbench({ widths: [128, 384, 512], residual: true, ...o }, 'airbench96');
/** a tenth of airbench94's multiply-adds (11.7 M at 1x28x28) */
export const airbenchSmall = (o: AirbenchOptions = {}): Airbench => new Airbench({ widths: [32, 64, 128], ...o }, 'airbench_s');
/**
 * airbench_s with a last group twice as wide (18.3 M multiply-adds at 1x28x28): the default
 * recipe's model, ~0.3 points more accurate on Fashion-MNIST than airbench_s for ~1.4x its time
 */
export const airbenchMedium = (o: AirbenchOptions = {}): Airbench => new Airbench({ widths: [32, 64, 256], ...o }, 'airbench_m');

registerModel<AirbenchOptions>({ name: 'airbench94', config: { ...CONFIG }, build: airbench94 });
registerModel<AirbenchOptions>({ name: 'airbench96', config: { ...CONFIG, paper: `${PAPER} (airbench96)` }, build: airbench96 });
registerModel<AirbenchOptions>({ name: 'airbench_s', config: { ...CONFIG, inputSize: [1, 28, 28] }, build: airbenchSmall });
registerModel<AirbenchOptions>({ name: 'airbench_m', config: { ...CONFIG, inputSize: [1, 28, 28] }, build: airbenchMedium });
