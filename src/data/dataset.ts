// The Dataset interface, the in-memory TensorDataset behind MNIST/CIFAR/synthetic data, subsets,
// and seeded validation splits.

import { tensor, type Tensor } from '../engine/index.js';
import { Rng } from './rng.js';

/** A batch of samples: x images [N, C, H, W] (uint8 from datasets), y labels int64 [N] (or soft [N, K]). */
export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** A file a dataset could not load: reported once by path, then skipped whenever it is asked for. */
export interface SkippedFile {
  path: string;
  reason: string;
  /** How many times a batch asked for it. */
  times: number;
}

export interface Dataset {
  /** Used in error messages and logs, e.g. 'fashion-mnist/train'. */
  readonly name?: string;
  readonly length: number;
  readonly classes: string[];
  /** [channels, height, width] of one sample as getBatch returns it. */
  readonly inputShape: [number, number, number];
  /** The class of sample `index`, without loading the sample (splits, class counts). */
  label(index: number): number;
  /**
   * The samples at `indices`, in that order: x [n, C, H, W], y int64 [n]. The caller owns the
   * tensors. n is smaller than indices.length when samples had to be skipped (unreadable files).
   */
  getBatch(indices: readonly number[]): Batch | Promise<Batch>;
  /** Files skipped so far (image folders); absent or empty when nothing was skipped. */
  readonly skipped?: readonly SkippedFile[];
  /** Frees the native memory the dataset holds (in-memory datasets). */
  dispose?(): void;
}

/** Throws unless every index is an integer in [0, length), naming the dataset. */
export function checkIndices(dataset: Pick<Dataset, 'name' | 'length'>, indices: readonly number[]): void {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= dataset.length) {
      throw new RangeError(
        `${dataset.name ?? 'dataset'}: sample index ${v} (position ${i} of the batch) is out of range: ` +
          `expected an integer in [0, ${dataset.length})`,
      );
    }
  }
}

/** int64 index tensor for indexSelect / gather. */
export function indexTensor(indices: ArrayLike<number>, device = 'cpu'): Tensor {
  const i32 = tensor(Int32Array.from(Array.from(indices)), { device });
  try {
    return i32.long();
  } finally {
    i32.dispose();
  }
}

function labelsToInt32(labels: Tensor): Int32Array {
  const raw = labels.toTypedArray();
  const out = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]);
  return out;
}

/**
 * A dataset held as one tensor: images [N, C, H, W] and labels int64 [N]. Batches are gathered
 * with one indexSelect, so fetching costs a memory copy of the batch and nothing more.
 */
export class TensorDataset implements Dataset {
  readonly name: string;
  readonly classes: string[];
  readonly inputShape: [number, number, number];
  readonly #images: Tensor;
  readonly #labels: Tensor;
  readonly #labelArray: Int32Array;

  /** Takes ownership of both tensors (they survive tidy scopes until dispose()). */
  constructor(images: Tensor, labels: Tensor, classes: readonly string[], name = 'tensor-dataset') {
    const [n, c, h, w] = images.shape;
    if (images.ndim !== 4 || n === undefined || c === undefined || h === undefined || w === undefined) {
      throw new TypeError(`${name}: images must be [N, C, H, W], got [${images.shape.join(', ')}]`);
    }
    if (labels.ndim !== 1 || labels.size(0) !== n || labels.dtype !== 'int64') {
      throw new TypeError(`${name}: labels must be int64 [${n}], got ${labels.dtype} [${labels.shape.join(', ')}]`);
    }
    this.name = name;
    this.classes = [...classes];
    this.inputShape = [c, h, w];
    this.#images = images.keep();
    this.#labels = labels.keep();
    this.#labelArray = labelsToInt32(labels);
    const bad = this.#labelArray.findIndex((v) => v < 0 || v >= this.classes.length);
    if (bad >= 0) {
      throw new RangeError(`${name}: label ${this.#labelArray[bad]} of sample ${bad} is not a class index in [0, ${this.classes.length})`);
    }
  }

  get length(): number {
    return this.#labelArray.length;
  }

  /** The whole image tensor (a view the dataset still owns: do not dispose it). */
  get images(): Tensor {
    return this.#images;
  }

  /** The whole label tensor (owned by the dataset). */
  get labels(): Tensor {
    return this.#labels;
  }

  label(index: number): number {
    const v = this.#labelArray[index];
    if (v === undefined) throw new RangeError(`${this.name}: sample index ${index} is out of range [0, ${this.length})`);
    return v;
  }

  getBatch(indices: readonly number[]): Batch {
    checkIndices(this, indices);
    const idx = indexTensor(indices);
    try {
      return { x: this.#images.indexSelect(0, idx), y: this.#labels.indexSelect(0, idx) };
    } finally {
      idx.dispose();
    }
  }

  dispose(): void {
    this.#images.dispose();
    this.#labels.dispose();
  }
}

/** The samples of `dataset` at `indices` (in that order), as a dataset; shares the parent's data. */
export function subset(dataset: Dataset, indices: readonly number[], name?: string): Dataset {
  checkIndices(dataset, indices);
  const map = Int32Array.from(indices);
  const sub: Dataset = {
    name: name ?? `${dataset.name ?? 'dataset'}[subset of ${map.length}]`,
    length: map.length,
    classes: dataset.classes,
    inputShape: dataset.inputShape,
    label: (i: number) => {
      const j = map[i];
      if (j === undefined) throw new RangeError(`${sub.name}: sample index ${i} is out of range [0, ${map.length})`);
      return dataset.label(j);
    },
    getBatch: (batch: readonly number[]) => {
      checkIndices(sub, batch);
      return dataset.getBatch(batch.map((i) => map[i]!));
    },
    get skipped() {
      return dataset.skipped;
    },
  };
  return sub;
}

export interface SplitOptions {
  /** Keep each class's share in both parts (default true); false: a plain random split. */
  stratified?: boolean;
}

export interface Split {
  train: Dataset;
  val: Dataset;
  /** Sorted sample indices of the parent in each part. */
  trainIndices: number[];
  valIndices: number[];
}

function checkFraction(fraction: number): void {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`splitValidation: fraction must be in (0, 1), got ${fraction}`);
  }
}

// Largest remainder: per-class quotas that add up to exactly round(fraction * N).
function classQuotas(counts: number[], fraction: number, total: number): number[] {
  const exact = counts.map((c) => c * fraction);
  const quotas = exact.map(Math.floor);
  let left = Math.round(total * fraction) - quotas.reduce((a, b) => a + b, 0);
  const order = exact.map((e, k) => ({ k, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.k - b.k);
  for (const { k } of order) {
    if (left <= 0) break;
    if (quotas[k]! < counts[k]!) {
      quotas[k]!++;
      left--;
    }
  }
  return quotas;
}

function stratifiedVal(dataset: Dataset, fraction: number, rng: Rng): number[] {
  const byClass: number[][] = dataset.classes.map(() => []);
  for (let i = 0; i < dataset.length; i++) {
    const c = dataset.label(i);
    const list = byClass[c];
    if (list === undefined) throw new RangeError(`splitValidation: sample ${i} has label ${c}, not a class of ${dataset.name ?? 'the dataset'}`);
    list.push(i);
  }
  const quotas = classQuotas(byClass.map((l) => l.length), fraction, dataset.length);
  return byClass.flatMap((list, c) => rng.shuffle(list).slice(0, quotas[c]));
}

/**
 * Splits a dataset into train and validation parts, deterministically for a seed: the same
 * (dataset, fraction, seed) always gives the same split. Stratified by default: each class puts
 * (about) `fraction` of its samples into val, and val has exactly round(fraction * N) samples.
 */
export function splitValidation(dataset: Dataset, fraction: number, seed = 0, options: SplitOptions = {}): Split {
  checkFraction(fraction);
  const rng = Rng.fromKeys(seed, 0x5711);
  const val = options.stratified ?? true
    ? stratifiedVal(dataset, fraction, rng)
    : Array.from(rng.permutation(dataset.length).subarray(0, Math.round(fraction * dataset.length)));
  const inVal = new Uint8Array(dataset.length);
  for (const i of val) inVal[i] = 1;
  const valIndices = val.sort((a, b) => a - b);
  const trainIndices: number[] = [];
  for (let i = 0; i < dataset.length; i++) if (inVal[i] === 0) trainIndices.push(i);
  if (valIndices.length === 0 || trainIndices.length === 0) {
    throw new RangeError(
      `splitValidation: fraction ${fraction} of ${dataset.length} samples leaves an empty part ` +
        `(train ${trainIndices.length}, val ${valIndices.length})`,
    );
  }
  const base = dataset.name ?? 'dataset';
  return {
    train: subset(dataset, trainIndices, `${base}[train split]`),
    val: subset(dataset, valIndices, `${base}[val split]`),
    trainIndices,
    valIndices,
  };
}
