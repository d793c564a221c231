// The datasets users name: MNIST-layout (Fashion-MNIST, MNIST), CIFAR-10/100, image folders,
// and synthetic data for tests and benchmarks. The raw readers live in src/io.

import { resolve } from 'node:path';
import { F, fromBytes, noGrad, randn, tensor, tidy, type Tensor } from '../engine/index.js';
import { readCifar, type CifarLabelKind, type CifarSplit } from '../io/cifar.js';
import {
  DatasetFileError,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  MNIST_CLASSES,
  readMnistSplit,
  type MnistSplitName,
} from '../io/idx.js';
import { decodeImages, listImageFolder, type ImageItem, type ResizeKernel, type ResizeMode } from '../io/images.js';
import { checkIndices, TensorDataset, type Batch, type Dataset, type SkippedFile } from './dataset.js';
import { Rng, withCpuSeed } from './rng.js';

// ---------------------------------------------------------------------------------------------
// MNIST layout

export interface MnistOptions {
  split?: MnistSplitName;
  /** Folder with the idx files (gzipped or not). */
  dir?: string;
}

export const MNIST_DIR = '/usr/share/datasets/mnist';

const FASHION_HINT = `the Debian/Ubuntu package dataset-fashion-mnist installs it in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`;

function withHint(err: unknown, hint: string): unknown {
  if (!(err instanceof DatasetFileError) || err.message.includes('apt-get')) return err;
  const detail = err.message.startsWith(`${err.path}: `) ? err.message.slice(err.path.length + 2) : err.message;
  return new DatasetFileError(err.path, `${detail}; ${hint}`, { cause: err });
}

function mnistLayout(name: string, dir: string, split: MnistSplitName, classes: readonly string[], hint?: string): TensorDataset {
  let data;
  try {
    data = readMnistSplit(dir, split, { numClasses: classes.length });
  } catch (err) {
    throw hint === undefined ? err : withHint(err, hint);
  }
  const { images, labels, count, height, width } = data;
  const x = fromBytes(images, [count, 1, height, width], 'uint8');
  const y = tidy(() => fromBytes(labels, [count], 'uint8').long());
  return new TensorDataset(x, y, classes, `${name}/${split}`);
}

/**
 * Fashion-MNIST (Xiao et al. 2017): 60000 train / 10000 test 28x28 grayscale images of 10 kinds
 * of clothing, held in memory as one uint8 tensor [N, 1, 28, 28].
 */
export function fashionMnist(options: MnistOptions = {}): TensorDataset {
  return mnistLayout('fashion-mnist', resolve(options.dir ?? FASHION_MNIST_DIR), options.split ?? 'train', FASHION_MNIST_CLASSES, FASHION_HINT);
}

/** MNIST digits, same layout as Fashion-MNIST. */
export function mnist(options: MnistOptions = {}): TensorDataset {
  return mnistLayout('mnist', resolve(options.dir ?? MNIST_DIR), options.split ?? 'train', MNIST_CLASSES);
}

// ---------------------------------------------------------------------------------------------
// CIFAR

export interface CifarDatasetOptions {
  /** The folder with the binary batches, or the one holding cifar-10-batches-bin / cifar-100-binary. */
  dir: string;
  split?: CifarSplit;
}

function cifar(variant: 'cifar10' | 'cifar100', options: CifarDatasetOptions, labelKind?: CifarLabelKind): TensorDataset {
  if (typeof options?.dir !== 'string') throw new TypeError(`${variant}: options.dir (the folder with the CIFAR binary files) is required`);
  const split = options.split ?? 'train';
  const data = readCifar(options.dir, { variant, split, labelKind });
  const x = fromBytes(data.images, [data.count, 3, 32, 32], 'uint8');
  const y = tidy(() => fromBytes(data.labels, [data.count], 'uint8').long());
  return new TensorDataset(x, y, data.classes, `${variant}/${split}`);
}

/** CIFAR-10, binary version: 50000 train / 10000 test 32x32 RGB images in memory. */
export const cifar10 = (options: CifarDatasetOptions): TensorDataset => cifar('cifar10', options);

/** CIFAR-100, binary version: 100 fine classes (default) or the 20 coarse superclasses. */
export const cifar100 = (options: CifarDatasetOptions & { labelKind?: CifarLabelKind }): TensorDataset =>
  cifar('cifar100', options, options.labelKind);

// ---------------------------------------------------------------------------------------------
// Image folders

export interface ImageFolderOptions {
  /** root/<class>/**\/*.{jpg,jpeg,png,webp}, as torchvision's ImageFolder. */
  root: string;
  /** [height, width] every image is decoded to. */
  size: readonly [number, number];
  /** 3 (RGB, default) or 1 (PIL's luma). */
  channels?: 1 | 3;
  /** How images are fitted to size (default 'resize': stretch); see decodeImage. */
  mode?: ResizeMode;
  kernel?: ResizeKernel;
  /** Images decoded at once per batch (default: the number of cores). */
  concurrency?: number;
  /** Called the first time a file is skipped; default: a console.warn line naming the file. */
  onSkip?: (file: SkippedFile) => void;
}

const warnSkip = (f: SkippedFile): void => console.warn(`convkit: skipping unreadable image ${f.path}: ${f.reason}`);

/**
 * An image-classification folder decoded on demand with sharp (libvips, on libuv's thread pool,
 * so decoding overlaps training). A file that cannot be decoded is reported once by path and
 * skipped: its batch comes back smaller, and `skipped` lists every such file.
 */
export class ImageFolderDataset implements Dataset {
  readonly name: string;
  readonly root: string;
  readonly classes: string[];
  readonly items: readonly ImageItem[];
  readonly inputShape: [number, number, number];
  readonly #options: ImageFolderOptions;
  readonly #skipped = new Map<string, SkippedFile>();

  constructor(options: ImageFolderOptions) {
    const [h, w] = options.size ?? [];
    if (!Number.isInteger(h) || !Number.isInteger(w) || h! < 1 || w! < 1) {
      throw new RangeError(`imageFolder: size must be [height, width] of positive integers, got ${JSON.stringify(options.size)}`);
    }
    const channels = options.channels ?? 3;
    if (channels !== 1 && channels !== 3) throw new RangeError(`imageFolder: channels must be 1 or 3, got ${String(channels)}`);
    const folder = listImageFolder(options.root);
    this.root = folder.root;
    this.name = `image-folder ${folder.root}`;
    this.classes = folder.classes;
    this.items = folder.items;
    this.inputShape = [channels, h!, w!];
    this.#options = options;
  }

  get length(): number {
    return this.items.length;
  }

  get skipped(): readonly SkippedFile[] {
    return [...this.#skipped.values()];
  }

  label(index: number): number {
    const item = this.items[index];
    if (item === undefined) throw new RangeError(`${this.name}: sample index ${index} is out of range [0, ${this.length})`);
    return item.label;
  }

  async getBatch(indices: readonly number[]): Promise<Batch> {
    checkIndices(this, indices);
    const [c, h, w] = this.inputShape;
    const o = this.#options;
    const items = indices.map((i) => this.items[i]!);
    const results = await decodeImages(items.map((it) => it.path), {
      size: [h, w], channels: c as 1 | 3, mode: o.mode, kernel: o.kernel, concurrency: o.concurrency,
    });
    const per = c * h * w;
    const pixels = new Uint8Array(results.length * per);
    const labels: bigint[] = [];
    results.forEach((r, k) => {
      if (r.ok) {
        pixels.set(r.data, labels.length * per);
        labels.push(BigInt(items[k]!.label));
      } else {
        this.#skip(r.path, r.error);
      }
    });
    const n = labels.length;
    return {
      x: fromBytes(pixels.subarray(0, n * per), [n, c, h, w], 'uint8'),
      y: tensor(BigInt64Array.from(labels)),
    };
  }

  #skip(path: string, error: Error): void {
    const seen = this.#skipped.get(path);
    if (seen !== undefined) {
      seen.times++;
      return;
    }
    const file: SkippedFile = { path, reason: error.message.startsWith(`${path}: `) ? error.message.slice(path.length + 2) : error.message, times: 1 };
    this.#skipped.set(path, file);
    (this.#options.onSkip ?? warnSkip)(file);
  }
}

export const imageFolder = (options: ImageFolderOptions): ImageFolderDataset => new ImageFolderDataset(options);

// ---------------------------------------------------------------------------------------------
// Synthetic data

export interface SyntheticOptions {
  count: number;
  /** [channels, height, width] */
  shape: readonly [number, number, number];
  numClasses: number;
  seed?: number;
  /** Standard deviation of the per-pixel noise, in pixel units (0..255); default 40. */
  noise?: number;
}

// Each class is a blocky random pattern (a 4x4 grid per channel, upscaled), so a small conv net
// or even a linear model learns it quickly, while the noise keeps it from being trivial.
function prototypes(numClasses: number, [c, h, w]: readonly [number, number, number]): Tensor {
  return tidy(() => {
    const grid = randn([numClasses, c, Math.min(4, h), Math.min(4, w)]).mul(70).add(128);
    return F.interpolate(grid, [h, w], { mode: 'nearest' });
  });
}

function balancedLabels(count: number, numClasses: number, rng: Rng): Int32Array {
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % numClasses;
  return rng.shuffle(labels);
}

/**
 * A learnable synthetic dataset for tests and benchmarks: class k's images are a fixed random
 * pattern plus Gaussian noise, uint8 [count, ...shape] in memory. Classes are balanced (sample
 * counts differ by at most one). Same seed, same data.
 */
export function synthetic(options: SyntheticOptions): TensorDataset {
  const { count, shape, numClasses } = options;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`synthetic: count must be a positive integer, got ${count}`);
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`synthetic: shape must be [channels, height, width] of positive integers, got ${JSON.stringify(shape)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`synthetic: numClasses must be a positive integer, got ${numClasses}`);
  const labels = balancedLabels(count, numClasses, Rng.fromKeys(seed, 0x5e7));
  const noise = options.noise ?? 40;
  const [x, y] = noGrad(() => withCpuSeed(seed, () => tidy(() => {
    const y = tensor(BigInt64Array.from(labels, (v) => BigInt(v)));
    const protos = prototypes(numClasses, shape);
    const images = protos.indexSelect(0, y).add(randn([count, ...shape]).mul(noise));
    return [images.round().clamp(0, 255).to('uint8'), y];
  })));
  const names = Array.from({ length: numClasses }, (_, k) => `class_${k}`);
  return new TensorDataset(x!, y!, names, `synthetic(${count}x${shape.join('x')}, ${numClasses} classes, seed ${seed})`);
}
