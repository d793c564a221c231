// The package as an npm user imports it: every entry point in package.json's exports resolves
// (by the package's own name, to the build in dist/) with its types, names the public API and
// leaves internal helpers out. Needs `npm run build` (npm test runs it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
  main: string; types: string; exports: Record<string, string | { types: string; default: string }>;
};

type Exports = Record<string, unknown>;
// a variable specifier: resolved at run time, against dist/, not by the test build's compiler
const load = (specifier: string): Promise<Exports> => import(specifier) as Promise<Exports>;

const EXPECTED: Record<string, string[]> = {
  convkit: [
    'Tensor', 'tensor', 'zeros', 'randn', 'tidy', 'dispose', 'noGrad', 'autocast', 'F', 'manualSeed', 'setNumThreads',
    'Module', 'Parameter', 'Sequential', 'Conv2d', 'BatchNorm2d', 'Linear', 'ReLU', 'init',
    'readSafetensors', 'writeSafetensors', 'readPth', 'readIdx', 'readCifar', 'decodeImage',
    'createModel', 'listModels', 'registerModel', 'modelEntry', 'ResNet', 'resnet18', 'efficientnetB0', 'mobilenetV2', 'inceptionV3',
    'DataLoader', 'fashionMnist', 'cifar10', 'imageFolder', 'compose', 'normalize', 'randomCrop', 'mixup', 'Rng',
    'SGD', 'Adam', 'AdamW', 'CosineAnnealingLR', 'OneCycleLR', 'ModelEma', 'Trainer', 'DEFAULT_RECIPE', 'resolveRecipe',
    'saveCheckpoint', 'loadCheckpoint', 'loadModelWeights', 'ConfusionMatrix', 'evaluate', 'evaluateCheckpoint',
    'countMacs', 'summary', 'formatSummary', 'gradCam', 'explainImages', 'scaleBase', 'scaleSearch', 'exportOnnx', 'ExportError', 'loadPredictor',
    'fetchPretrained', 'loadPretrained', 'IMAGENET_CLASSES', 'DownloadError',
    'pruneChannels', 'pruneCheckpoint', 'MagnitudePruner',
  ],
  'convkit/engine': ['Tensor', 'tensor', 'tidy', 'F', 'noGrad', 'setNumThreads'],
  'convkit/nn': ['Module', 'Parameter', 'Conv2d', 'BatchNorm2d', 'Linear', 'LSTM', 'init'],
  'convkit/io': ['readSafetensors', 'writeSafetensors', 'readPth', 'readIdx', 'readCifar', 'decodeImage', 'encodePng', 'downloadFile', 'sha256File'],
  'convkit/models': ['createModel', 'listModels', 'registerModel', 'resnet50', 'efficientnetB0', 'BasicBlock', 'MBConv', 'fetchPretrained', 'pretrainedPath', 'adaptInputConvWeight'],
  'convkit/data': ['DataLoader', 'fashionMnist', 'synthetic', 'compose', 'randAugment', 'mixupCutmix', 'Rng'],
  'convkit/train': ['SGD', 'Trainer', 'saveCheckpoint', 'evaluate', 'ConfusionMatrix', 'renderReport', 'scaleSearch', 'openModelFile'],
  'convkit/distributed': ['ProcessGroup', 'DistributedDataParallel', 'convertSyncBatchNorm', 'launchWorkers', 'workerEnv', 'DistributedError'],
  'convkit/explain': ['gradCam', 'integratedGradients', 'occlusion', 'explain', 'explainImages', 'forwardWithCapture', 'overlay'],
  'convkit/export': ['exportOnnx', 'traceGraph', 'loadExportSource', 'ExportError', 'optimize', 'readModelInfo', 'readOnnxMetadata'],
  'convkit/deploy': ['loadPredictor', 'topK'],
  'convkit/compress': ['quantizeModel', 'quantizeBatches', 'quantizationReport', 'toQdq', 'CALIB_METHODS', 'quantizePerChannel', 'pruneChannels', 'pruneUnits', 'pruneCheckpoint', 'buildDependencyGraph', 'channelImportance', 'MagnitudePruner', 'gradualSparsity', 'PruneError'],
  'convkit/serve': ['startServer', 'Batcher', 'parseInferRequest', 'createMetrics', 'bearerCheck'],
};

// internal helpers: nowhere public
const INTERNAL_EVERYWHERE = ['detachedHandle', 'setPretrainedLoader', 'escapeHtml', 'chwToPngDataUri', 'lineChart', 'confusionHeatmap', 'thumbnails', 'linearKeys'];
// building blocks of one layer: in that layer's entry point, not at the root
const NOT_AT_ROOT = [
  ...INTERNAL_EVERYWHERE, 'encodePng', 'chain', 'checkInputShape', 'conv1x1', 'makeLayer', 'ops', 'checkIndices', 'disposeReplaced',
  'writeFileAtomic', 'removeStaleTempFiles', 'buildOptimizer', 'buildRunData', 'probeBf16', 'ProgressBar', 'logitsOf', 'renderReport',
  'forwardWithCapture', 'overlay', 'camWeights', 'downloadFile',
];

const ENTRY = (key: string): string => (key === '.' ? 'convkit' : `convkit/${key.slice(2)}`);
const entries = Object.entries(pkg.exports).filter(([k]) => k !== './package.json');

test('main, types and every export resolve to files in dist/ with their declarations', () => {
  assert.equal(pkg.main, './dist/index.js');
  assert.equal(pkg.types, './dist/index.d.ts');
  assert.deepEqual(entries.map(([k]) => k).sort(), ['.', './compress', './data', './deploy', './distributed', './engine', './explain', './export', './io', './models', './nn', './serve', './train']);
  for (const [key, target] of entries) {
    assert.ok(typeof target === 'object', `${key}: conditional export with types`);
    for (const file of [target.types, target.default]) {
      assert.match(file, /^\.\/dist\//, `${key}: ${file}`);
      assert.ok(existsSync(fileURLToPath(new URL(file, ROOT))), `${key}: ${file} missing (npm run build)`);
    }
  }
});

test('each entry point names its public API and no internal helper', async () => {
  for (const [key] of entries) {
    const name = ENTRY(key);
    const mod = await load(name);
    const missing = EXPECTED[name]!.filter((n) => mod[n] === undefined);
    assert.deepEqual(missing, [], `${name} lacks`);
    const leaked = (name === 'convkit' ? NOT_AT_ROOT : INTERNAL_EVERYWHERE).filter((n) => n in mod);
    assert.deepEqual(leaked, [], `${name} exports internals`);
  }
});

test('the root re-exports the layers: the same objects, one module instance each', async () => {
  const root = await load('convkit');
  const layers = await Promise.all(entries.filter(([k]) => k !== '.').map(([k]) => load(ENTRY(k))));
  const fromLayers = new Map<string, unknown>();
  for (const m of layers) for (const [n, v] of Object.entries(m)) fromLayers.set(n, v);
  const analyze = new Set(['countMacs', 'layerMacs', 'summary', 'formatSummary', 'humanCount']);
  for (const [n, v] of Object.entries(root)) {
    if (analyze.has(n)) continue;
    assert.ok(fromLayers.has(n), `convkit.${n} is in no layer's entry point`);
    assert.equal(v, fromLayers.get(n), `convkit.${n} is another object than the layer's`);
  }
  assert.ok(Object.keys(root).length > 250, `${Object.keys(root).length} names at the root`);
});
