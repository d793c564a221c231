// The CIFAR-10 and CIFAR-100 "binary version" distributions
// (https://www.cs.toronto.edu/~kriz/cifar.html).
//
// CIFAR-10:  data_batch_1..5.bin, test_batch.bin; records of <label byte><3072 pixel bytes>.
// CIFAR-100: train.bin, test.bin; records of <coarse label><fine label><3072 pixel bytes>.
// Pixels are 32x32 planes, red then green then blue: already CHW, so they are copied as is.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetFileError, checkLabels } from './idx.js';
import { checkInputFile, readInputFile, type InputFileOptions } from './files.js';

export type CifarVariant = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';
export type CifarLabelKind = 'fine' | 'coarse';

export interface CifarOptions {
  variant: CifarVariant;
  split: CifarSplit;
  /** CIFAR-100 only: the 100 fine classes (default) or the 20 coarse superclasses. */
  labelKind?: CifarLabelKind;
}

export interface CifarData {
  /** N*3*32*32 uint8, CHW per image (RGB planes), like an NCHW tensor. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  classes: string[];
  channels: 3;
  height: 32;
  width: 32;
}

export const CIFAR_IMAGE_BYTES = 3 * 32 * 32;

export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
]);

/** The fine labels in the order of `fine_label_names.txt` (alphabetical), as torchvision reports them. */
export const CIFAR100_FINE_CLASSES: readonly string[] = Object.freeze([
  'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle',
  'bowl', 'boy', 'bridge', 'bus', 'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle',
  'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'crab', 'crocodile', 'cup', 'dinosaur',
  'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
  'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain',
  'mouse', 'mushroom', 'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree',
  'plain', 'plate', 'poppy', 'porcupine', 'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket',
  'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail', 'snake', 'spider',
  'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger', 'tractor',
  'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
]);

export const CIFAR100_COARSE_CLASSES: readonly string[] = Object.freeze([
  'aquatic_mammals', 'fish', 'flowers', 'food_containers', 'fruit_and_vegetables',
  'household_electrical_devices', 'household_furniture', 'insects', 'large_carnivores',
  'large_man-made_outdoor_things', 'large_natural_outdoor_scenes', 'large_omnivores_and_herbivores',
  'medium_mammals', 'non-insect_invertebrates', 'people', 'reptiles', 'small_mammals', 'trees',
  'vehicles_1', 'vehicles_2',
]);

interface Layout {
  subfolder: string;
  files: string[];
  recordBytes: number;
  /** Offset of the wanted label inside a record. */
  labelOffset: number;
  labelName: string;
  numClasses: number;
  metaFile: string;
  defaultClasses: readonly string[];
}

function layoutOf({ variant, split, labelKind = 'fine' }: CifarOptions): Layout {
  if (variant === 'cifar10') {
    if (labelKind !== 'fine') throw new RangeError(`readCifar: labelKind '${labelKind}' applies only to CIFAR-100`);
    const files = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
    return {
      subfolder: 'cifar-10-batches-bin', files, recordBytes: 1 + CIFAR_IMAGE_BYTES, labelOffset: 0, labelName: 'label',
      numClasses: 10, metaFile: 'batches.meta.txt', defaultClasses: CIFAR10_CLASSES,
    };
  }
  const fine = labelKind === 'fine';
  return {
    subfolder: 'cifar-100-binary', files: [`${split}.bin`], recordBytes: 2 + CIFAR_IMAGE_BYTES,
    labelOffset: fine ? 1 : 0, labelName: `${labelKind} label`, numClasses: fine ? 100 : 20,
    metaFile: fine ? 'fine_label_names.txt' : 'coarse_label_names.txt',
    defaultClasses: fine ? CIFAR100_FINE_CLASSES : CIFAR100_COARSE_CLASSES,
  };
}

// Users point at either the folder they extracted into or the folder inside the archive.
function resolveDir(dir: string, layout: Layout): string {
  const tries = [dir, join(dir, layout.subfolder)];
  const found = tries.find((d) => existsSync(join(d, layout.files[0]!)));
  if (found !== undefined) return found;
  const looked = tries.map((d) => join(d, layout.files[0]!)).join(' or ');
  throw new DatasetFileError(dir, `CIFAR data not found: looked for ${looked}`);
}

/**
 * The largest CIFAR batch file read: 1 GiB, 6.5 times the largest official one (CIFAR-100's
 * train.bin, 154 MB), so a wrong file fails before its size is allocated.
 */
export const MAX_CIFAR_FILE_BYTES = 2 ** 30;

function batchFile(path: string): InputFileOptions {
  return { what: 'CIFAR batch', maxBytes: MAX_CIFAR_FILE_BYTES, fail: (m, cause) => new DatasetFileError(path, m, { cause }) };
}

function recordCount(path: string, recordBytes: number): number {
  const size = checkInputFile(path, batchFile(path));
  if (size === 0 || size % recordBytes !== 0) {
    throw new DatasetFileError(
      path,
      `file size ${size} bytes is not a positive multiple of the record size ${recordBytes} ` +
        `(${Math.floor(size / recordBytes)} whole records and ${size % recordBytes} bytes left over)`,
    );
  }
  return size / recordBytes;
}

/** Class names from the meta file when present (one per line), else the standard names. */
export function readClassNames(dir: string, metaFile: string, expected: number, defaults: readonly string[]): string[] {
  const path = join(dir, metaFile);
  if (!existsSync(path)) return [...defaults];
  const text = readInputFile(path, { what: 'class names', maxBytes: 1 << 20, fail: (m, cause) => new DatasetFileError(path, m, { cause }) });
  const names = text.toString('utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== expected) {
    throw new DatasetFileError(path, `expected ${expected} class names, one per line, found ${names.length}`);
  }
  return names;
}

interface Sink {
  images: Uint8Array;
  labels: Uint8Array;
  at: number;
}

function readBatch(path: string, layout: Layout, sink: Sink): void {
  const bytes = readInputFile(path, batchFile(path));
  // the file may have changed since its size was counted
  const n = bytes.length / layout.recordBytes;
  if (sink.at + n > sink.labels.length || !Number.isInteger(n)) {
    throw new DatasetFileError(path, `file changed while reading: now ${bytes.length} bytes, not whole records fitting the size counted first`);
  }
  const labels = new Uint8Array(n);
  const pixelOffset = layout.recordBytes - CIFAR_IMAGE_BYTES;
  for (let r = 0; r < n; r++) {
    const base = r * layout.recordBytes;
    labels[r] = bytes[base + layout.labelOffset]!;
    sink.images.set(bytes.subarray(base + pixelOffset, base + layout.recordBytes), (sink.at + r) * CIFAR_IMAGE_BYTES);
  }
  checkLabels(path, labels, layout.numClasses, (i) => `${layout.labelName} of record ${i}`);
  sink.labels.set(labels, sink.at);
  sink.at += n;
}

/**
 * Reads one split of CIFAR-10 or CIFAR-100 (binary version). `dir` is the folder holding the
 * `.bin` files or the one holding `cifar-10-batches-bin` / `cifar-100-binary`.
 */
export function readCifar(dir: string, options: CifarOptions): CifarData {
  const layout = layoutOf(options);
  const root = resolveDir(dir, layout);
  const paths = layout.files.map((f) => join(root, f));
  // Sizes first, so the output is allocated once and a bad file fails before any big read.
  const counts = paths.map((p) => recordCount(p, layout.recordBytes));
  const count = counts.reduce((a, b) => a + b, 0);
  const sink: Sink = { images: new Uint8Array(count * CIFAR_IMAGE_BYTES), labels: new Uint8Array(count), at: 0 };
  for (const p of paths) readBatch(p, layout, sink);
  const classes = readClassNames(root, layout.metaFile, layout.numClasses, layout.defaultClasses);
  return { images: sink.images, labels: sink.labels, count, classes, channels: 3, height: 32, width: 32 };
}
