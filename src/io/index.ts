// File formats: checkpoints (safetensors, PyTorch .pth), datasets (idx, CIFAR binary, images),
// and the ground rules of every file convkit touches: inputs are checked before they are read,
// outputs are written atomically.
export { readSafetensors, writeSafetensors, parseSafetensorsHeader, SafetensorsError, type SafetensorsHeader, type SafetensorsTensorInfo, type ReadSafetensorsOptions } from './safetensors.js';
export { readPth, type PthOptions } from './pth.js';
export { UnpicklingError } from './pickle.js';
export { readIdx, readMnistSplit, DatasetFileError, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, MNIST_CLASSES, type IdxArray, type MnistSplit } from './idx.js';
export { readCifar, CIFAR10_CLASSES, CIFAR100_FINE_CLASSES, CIFAR100_COARSE_CLASSES, type CifarData, type CifarOptions } from './cifar.js';
export { listImageFolder, listImages, decodeImage, decodeImageBytes, decodeImages, encodePng, MAX_IMAGE_PIXELS, IMAGE_EXTENSIONS, type ImageFolder, type DecodeOptions, type DecodeResult, type ChwImage } from './images.js';
export { downloadFile, downloadFileSync, sha256File, DownloadError, type DownloadOptions, type DownloadResult } from './download.js';
export { writeFileAtomic, copyFileAtomic, removeStaleTempFiles } from './atomic.js';
export { checkInputFile, readInputFile, isOnnxFile, type InputFileOptions } from './files.js';
export type { JsonValue } from './json.js';
