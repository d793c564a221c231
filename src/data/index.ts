// The data layer: datasets, batch transforms and augmentation, the loader, seeded randomness.
export {
  TensorDataset, subset, splitValidation, checkIndices,
  type Batch, type Dataset, type SkippedFile, type Split, type SplitOptions,
} from './dataset.js';
export {
  fashionMnist, mnist, cifar10, cifar100, imageFolder, synthetic, ImageFolderDataset, MNIST_DIR,
  type MnistOptions, type CifarDatasetOptions, type ImageFolderOptions, type SyntheticOptions,
} from './datasets.js';
export {
  compose, transformFromSpec, toBatchTransform, registerTransform, transformNames,
  toFloat, normalize, resize, repeatChannels, centerCrop, randomCrop, randomShift, randomResizedCrop,
  randomHorizontalFlip, randomVerticalFlip, randomErasing, cutout, NORMALIZATION_STATS,
  type ComposedTransform, type TransformContext, type ToFloatOptions, type NormalizeOptions,
  type ResizeTransformOptions, type RandomCropOptions, type RandomShiftOptions,
  type RandomResizedCropOptions, type RandomErasingOptions, type CutoutOptions,
} from './transforms.js';
export {
  makeTransform, disposeReplaced,
  type BatchTransform, type Transform, type TransformSpec, type TransformOptions,
} from './transform.js';
export { randAugment, applyRandAugmentOp, augmentationSpace, RAND_AUGMENT_OPS, type RandAugmentOp, type RandAugmentOptions } from './randaugment.js';
export {
  mixup, cutmix, mixupCutmix, mixupBatch, cutmixBatch, cutmixBox, softTargets,
  type MixupOptions, type CutmixOptions, type MixupCutmixOptions,
} from './mix.js';
export * as ops from './ops.js';
export { DataLoader, type DataLoaderOptions, type LoaderBatch } from './loader.js';
export { Rng, deriveSeed, withCpuSeed, sampleBeta, TorchDraws, torchUniform, torchNormal, type RngState } from './rng.js';
