// convkit: convolutional networks for TypeScript on libtorch. The main entry names the public API
// of every layer, explicitly, so that an internal helper never becomes public by accident. Each
// layer is also its own entry point (convkit/engine, /nn, /io, /models, /data, /train, /explain), which
// additionally carries the pieces for building on that layer (the models' blocks and checks,
// the trainer's set-up steps, the data layer's batch ops).
// the engine: tensors, creation, autograd, memory scopes, runtime settings, F
export {
  arange, autocast, bernoulli, BYTES_PER_ELEMENT, cacheInfo, cat, cudaAvailable, cudaDeviceCount,
  dispose, DTYPES, empty, emptyCache, enableGrad, eye, F, fromBytes, full, fullLike, getNumThreads,
  getRngState, isFloating, isGradEnabled, isTensor, libtorchVersion, linspace, manualSeed,
  manualSeedCpu, multinomial, noGrad, oneHot, ones, onesLike, profile, rand, randint, randn,
  randperm, setCacheLimit, setNumThreads, setRngState, stack, tensor, Tensor, tidy, where, zeros,
  zerosLike,
} from './engine/index.js';
export type {
  CacheInfo, CreateOptions, DType, MemoryFormat, NestedArray, Scalar, StateDict, TensorOrScalar, TypedArray,
} from './engine/index.js';

// nn: Module, Parameter, layers and initialisers
export {
  AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d,
  describeLoad, Dropout, Dropout2d, ELU, Embedding, Flatten, GELU, generateSquareSubsequentMask,
  GroupNorm, GRU, Hardsigmoid, Hardswish, Identity, init, LayerNorm, LeakyReLU, Linear, LogSoftmax,
  LSTM, MaxPool2d, Mish, Module, ModuleDict, ModuleList, MultiheadAttention, Parameter, ReLU,
  ReLU6, RNN, Sequential, Sigmoid, SiLU, Softmax, stochasticDepth, StochasticDepth, Tanh,
  TransformerEncoder, TransformerEncoderLayer,
} from './nn/index.js';
export type {
  Activation, AttentionCallOptions, BatchNormOptions, Conv2dOptions, EncoderCallOptions,
  LoadOptions, LoadResult, MultiheadAttentionOptions, RNNOptions, TransformerEncoderLayerOptions,
} from './nn/index.js';

// io: checkpoints and dataset files
export {
  CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES, DatasetFileError, decodeImage,
  decodeImages, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, IMAGE_EXTENSIONS, listImageFolder,
  MNIST_CLASSES, parseSafetensorsHeader, readCifar, readIdx, readMnistSplit, readPth,
  readSafetensors, SafetensorsError, UnpicklingError, writeSafetensors, DownloadError,
} from './io/index.js';
export type {
  CifarData, CifarOptions, DecodeOptions, DecodeResult, IdxArray, ImageFolder, JsonValue, MnistSplit,
  PthOptions, ReadSafetensorsOptions, SafetensorsHeader, SafetensorsTensorInfo,
} from './io/index.js';

// models: the zoo, its registry and the families' building blocks
export {
  Airbench, AIRBENCH_MIN_INPUT, airbench94, airbench96, airbenchMedium, airbenchSmall, BasicBlock, BasicConv2d,
  Bottleneck, buildResNet, CIFAR_MEAN, CIFAR_RESNET_MIN_INPUT, CIFAR_STD, cifarResNet, CifarResNet,
  compoundScaling, ConvGroup, createModel, describeScaling, EfficientNet, EFFICIENTNET_B_VARIANTS,
  EFFICIENTNET_B0_STAGES, EFFICIENTNET_BASE_RESOLUTION, EFFICIENTNET_COEFFICIENTS,
  EFFICIENTNET_V2_STAGES, efficientnetB, efficientnetB0, efficientnetB1, efficientnetB2,
  efficientnetB3, efficientnetB4, efficientnetB5, efficientnetB6, efficientnetB7,
  efficientnetScaled, efficientnetV2, efficientnetV2L, efficientnetV2M, efficientnetV2S,
  formatScalingTable, checkCoefficients, describeScaledBase, scaleBase, scalingBaseVariant, FusedMBConv, googlenet, GoogLeNet, gruClassifier, IMAGENET_MEAN,
  IMAGENET_STD, Inception, Inception3, InceptionA, InceptionAux, InceptionAuxV3, InceptionB,
  InceptionC, InceptionD, InceptionE, inceptionV3, InvertedResidual, listModels, lstmClassifier,
  MBConv, MOBILENET_V2_SETTING, mobilenetV2, MobileNetV2, modelEntry, RecurrentClassifier,
  registerModel, ResidualBlock, ResNet, RESNET_MIN_INPUT, RESNET_VARIANTS, resnet101, resnet110,
  resnet152, resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56,
  resnext101_32x8d, resnext101_64x4d, resnext50_32x4d, transformerClassifier,
  TransformerClassifier, wide_resnet101_2, wide_resnet50_2,
  adaptInputConvWeight, fetchPretrained, IMAGENET_CLASSES, listPretrained, loadPretrained, pretrainedEntry, registerPretrained,
} from './models/index.js';
export type {
  AirbenchOptions, BlockOptions, BlockType, Classifier, CompoundCoefficients, EfficientNetArch,
  EfficientNetOptions, EfficientNetVariant, InceptionOptions, InvertedResidualRow,
  MobileNetV2Options, ModelConfig, ModelEntry, ModelOptions, RecurrentClassifierOptions,
  ResNetName, ResNetOptions, ScaledBase, ScaledDims, ScalingBase, ScalingReport, ScalingSpec, SequenceClassifierOptions,
  StageSpec, TransformerClassifierOptions, PretrainedEntry, PretrainedReport,
} from './models/index.js';

// data: datasets, transforms, mixing, the loader, seeded randomness
export {
  applyRandAugmentOp, augmentationSpace, centerCrop, cifar10, cifar100, compose, cutmix,
  cutmixBatch, cutout, DataLoader, deriveSeed, fashionMnist, imageFolder, ImageFolderDataset,
  makeTransform, mixup, mixupBatch, mixupCutmix, mnist, MNIST_DIR, NORMALIZATION_STATS, normalize,
  RAND_AUGMENT_OPS, randAugment, randomCrop, randomErasing, randomHorizontalFlip,
  randomResizedCrop, randomShift, randomVerticalFlip, registerTransform, resize, Rng, softTargets,
  splitValidation, subset, synthetic, TensorDataset, toBatchTransform, toFloat, transformFromSpec,
  transformNames, withCpuSeed,
} from './data/index.js';
export type {
  Batch, BatchTransform, CifarDatasetOptions, ComposedTransform, CutmixOptions, CutoutOptions,
  DataLoaderOptions, Dataset, ImageFolderOptions, LoaderBatch, MixupCutmixOptions,
  MixupOptions, MnistOptions, NormalizeOptions, RandAugmentOp, RandAugmentOptions,
  RandomCropOptions, RandomErasingOptions, RandomResizedCropOptions, RandomShiftOptions,
  ResizeTransformOptions, RngState, SkippedFile, Split, SplitOptions, SyntheticOptions,
  ToFloatOptions, Transform, TransformContext, TransformOptions, TransformSpec,
} from './data/index.js';

// train: optimizers, schedules, EMA, the Trainer and recipes, checkpoints, metrics, evaluation
export {
  Adam, AdamW, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, checkRecipe, clipGradNorm,
  clipGradValue, ConfusionMatrix, CosineAnnealingLR, DATASETS, DEFAULT_RECIPE, evaluate,
  evaluateCheckpoint, ExponentialLR, formatClassReport, formatConfusion, formatTable, LinearLR,
  loadCheckpoint, loadModelWeights, loadRecipeFile, LRScheduler, ModelEma, MultiStepLR, OneCycleLR,
  Optimizer, paramGroupsWithDecay, readCheckpointMeta, readModelWeights, RECIPE_KEYS, RecipeError,
  resolveRecipe, RMSprop, RunningMean, saveCheckpoint, saveModelWeights, SequentialLR, SGD, StepLR,
  topkCorrect, Trainer, openModelFile, scaleSearch, searchGrid, formatSearchTable,
} from './train/index.js';
export type {
  AdamGroup, AdamOptions, AugmentSpec, CheckpointContents, CheckpointEvaluation, ClassifierModule,
  ClassMetrics, ClassReport, ClipGradNormOptions, DecayGroup, DecayGroupsOptions, EpochRecord,
  EvalCheckpointOptions, EvalOptions, EvalResult, GroupOptions, LoadedCheckpoint,
  LoadWeightsOptions, LoadWeightsReport, Misclassified, ModelEmaOptions, ModelEmaState,
  OneCycleOptions, OptimizerMeta, OptimizerName, OptimizerState, ParamGroup, ParamGroupInput,
  ParamsInput, ParamState, Recipe, RMSpropGroup, RMSpropOptions, SchedulableGroup,
  SchedulableOptimizer, ScheduleFields, ScheduleName, Scheduler, SchedulerState, SGDGroup,
  SGDOptions, TrainerEvent, TrainerListener, TrainerOptions, TrainResult, TrainState,
  OpenedModel, ScaleSearchOptions, ScaleSearchEvent, ScaleSearchResult, ScaleSearchState, Candidate, CandidateResult,
} from './train/index.js';

// explain: Grad-CAM, Grad-CAM++, Integrated Gradients, occlusion, and their maps as image files
export {
  explain, explainImages, EXPLAIN_METHODS, ExplainError, gradCam, integratedGradients, occlusion,
} from './explain/index.js';
export type {
  CamMethod, CamOptions, CamResult, ExplainFilesOptions, ExplainIndex, ExplainMethod, ExplainModel,
  ExplainOptions, ExplainedImage, Explanation, IntegratedGradientsOptions, IntegratedGradientsResult,
  OcclusionOptions, OcclusionResult,
} from './explain/index.js';

// analyze: parameter and multiply-add counts, layer summaries
export {
  countMacs, layerMacs,
} from './analyze/macs.js';
export type {
  CountMacsOptions, LayerMacs, MacsReport,
} from './analyze/macs.js';
export {
  formatSummary, humanCount, summary,
} from './analyze/summary.js';
export type {
  FormatSummaryOptions, SummaryReport, SummaryRow,
} from './analyze/summary.js';

// export: ONNX files traced from a model's forward
export { exportOnnx, ExportError } from './export/index.js';
export type { ExportMetadata, ExportOptions, ExportResult } from './export/index.js';

// deploy: an .onnx file or a checkpoint run by ONNX Runtime or libtorch
export { loadPredictor, predictFiles } from './deploy/index.js';
export type { Predictor, PredictorInfo, Prediction, LoadPredictorOptions, EngineName, EngineChoice } from './deploy/index.js';

// compress: structured channel pruning and unstructured magnitude pruning
export { MagnitudePruner, PruneError, pruneChannels, pruneCheckpoint } from './compress/index.js';
export type { ChannelPruneOptions, ChannelPruneResult, PruneRunOptions, PruneRunResult } from './compress/index.js';
