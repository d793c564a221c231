// convkit explain <model|checkpoint> <image|folder ...>: heat maps of what a classifier looks at
// (Grad-CAM, Grad-CAM++, Integrated Gradients, occlusion), one set of files per image.
import * as fs from 'node:fs';
import { MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';
import { flag, intOpt, numOpt, parse, shapeOpt, str, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';

const METHODS = ['gradcam', 'gradcampp', 'ig', 'occlusion'];

export const HELP = `usage: convkit explain <model|checkpoint> <image|folder ...> -o <dir> [options]

Explains a classifier's decision on each image: the heat map of the evidence for a class,
blended over the image. The model is a checkpoint (a training checkpoint, a model.safetensors,
or other weights with --model) or a registered model's name (random weights unless --weights
or --pretrained).
Folders are searched for .jpg .jpeg .png .webp files.

For each image <name> it writes into the output folder:
  <name>.<method>.png      the map (jet colours) blended over the image
  <name>.<method>.map.png  the map alone, normalised to 0..255 gray (ig: the absolute
                           attributions; occlusion: the drop in probability)
  <name>.<method>.f32      the raw map: float32 little-endian, [height, width] row-major
and index.json: per image the class explained, the prediction, scores and file names.

options:
  -o, --out <dir>         the output folder (required)
  --method <m>            ${METHODS.join(', ')} (default gradcam)
  --class <k>             explain class k (default: each image's predicted class)
  --layer <path>          Grad-CAM(++): the module path of the layer (e.g. layer4,
                          features.7); default the last convolutional stage
  --model <name>          the registered model of a weights file convkit did not write
  --weights <file>        with a model name: load these weights
  --pretrained            with a model name: torchvision's ImageNet weights (downloaded once into
                          $CONVKIT_CACHE_DIR), with the ImageNet class names and crop size
  --num-classes <n>       the classifier's outputs (weights convkit did not write)
  --image-size <h,w>      the input size (default: the model's or the training run's)
  --steps <n>             Integrated Gradients: integration steps (default 64)
  --window <px>           occlusion: the patch side (default 1/8 of the image)
  --stride <px>           occlusion: the step between patches (default window/2)
  --alpha <a>             weight of the heat map in the blend, 0..1 (default 0.5)
  --ema                   a training checkpoint's EMA weights
  --json                  print index.json instead of a summary
  --quiet                 no per-image lines
${IMPORT_HELP}
  -h, --help              this help`;

const C = 'explain';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    out: { type: 'string', short: 'o' }, method: { type: 'string' }, class: { type: 'string' }, layer: { type: 'string' },
    model: { type: 'string' }, weights: { type: 'string' }, pretrained: { type: 'boolean' }, 'num-classes': { type: 'string' }, 'image-size': { type: 'string' },
    steps: { type: 'string' }, window: { type: 'string' }, stride: { type: 'string' }, alpha: { type: 'string' }, ema: { type: 'boolean' },
    json: { type: 'boolean' }, quiet: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 2 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const [source, ...inputs] = p.positionals;
  const out = str(p, 'out');
  if (!out) throw new UsageError('the output folder is required: -o <dir>', C);
  const method = str(p, 'method') ?? 'gradcam';
  if (!METHODS.includes(method)) throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got '${method}'`, C);
  const layer = str(p, 'layer');
  if (layer !== undefined && method !== 'gradcam' && method !== 'gradcampp') throw new UsageError(`--layer applies to gradcam and gradcampp, not ${method}`, C);
  const classIndex = intOpt(p, 'class', C, 0, MAX_CLASSES);
  const hw = shapeOpt(p, 'image-size', C, [2], MAX_IMAGE_SIDE);
  const steps = intOpt(p, 'steps', C, 1, 4096);
  const window = intOpt(p, 'window', C, 1, MAX_IMAGE_SIDE);
  const stride = intOpt(p, 'stride', C, 1, MAX_IMAGE_SIDE);
  const alpha = numOpt(p, 'alpha', C, 0, 1);
  const numClasses = intOpt(p, 'num-classes', C, 1, MAX_CLASSES);
  for (const i of inputs) if (!fs.existsSync(i)) throw new UsageError(`input ${i}: no such file or folder`, C);

  const pretrained = flag(p, 'pretrained');
  if (pretrained && str(p, 'weights')) throw new UsageError('--pretrained and --weights both give weights; choose one', C);
  const { listModels, createModel, modelEntry, loadModelWeights, fetchPretrained, pretrainedEntry, IMAGENET_CLASSES } = await import('../models/index.js');
  await importUserModules(p, C);
  const { openModelFile } = await import('../train/eval_checkpoint.js');
  const { explainImages, ExplainError } = await import('../explain/index.js');

  let opened;
  const isName = !fs.existsSync(source) && listModels().some((e) => e.name === source);
  if (isName) {
    const entry = modelEntry(source);
    if (entry.config.exampleInput && entry.config.exampleInput.shape.length !== 4) throw new UsageError(`${source} does not take images (its input is [${entry.config.exampleInput.shape.join(', ')}])`, C);
    const [c, h, w] = entry.config.inputSize;
    let size: [number, number] = [h, w];
    let classes: string[] | null = null;
    if (pretrained) {
      let crop: number;
      try {
        crop = pretrainedEntry(source).cropSize;
      } catch (e) {
        throw new UsageError(`--pretrained: ${(e as Error).message}`, C);
      }
      await fetchPretrained(source);
      size = [crop, crop];
      if (numClasses === undefined || numClasses === IMAGENET_CLASSES.length) classes = [...IMAGENET_CLASSES];
    }
    const model = createModel(source, { ...(numClasses ? { numClasses } : {}), inChannels: c, pretrained });
    const weights = str(p, 'weights');
    if (weights) loadModelWeights(model, weights);
    else if (!pretrained) console.error(`convkit explain: ${source} has random weights (no --weights or --pretrained): the maps show an untrained model`);
    opened = { model, name: source, channels: c, size, mean: [...entry.config.mean], std: [...entry.config.std], classes };
  } else {
    if (!fs.existsSync(source)) throw new UsageError(`${source} is neither a file nor a registered model (convkit models lists them)`, C);
    if (str(p, 'weights') || pretrained) throw new UsageError(`--${pretrained ? 'pretrained' : 'weights'} goes with a model name; a checkpoint file is its own weights`, C);
    opened = openModelFile(source, { model: str(p, 'model'), numClasses, ema: flag(p, 'ema') });
  }
  const { model } = opened;
  try {
    if (opened.channels !== 1 && opened.channels !== 3) throw new UsageError(`${opened.name} takes ${opened.channels}-channel input; explain reads images with 1 or 3 channels`, C);
    const size = hw ? [hw[0], hw[1]] as [number, number] : opened.size;
    const quiet = flag(p, 'quiet') || flag(p, 'json');
    let index;
    try {
      index = await explainImages(model, inputs, {
        outDir: out, method: method as 'gradcam', classIndex, layer, steps, window, stride, alpha, size, channels: opened.channels as 1 | 3,
        mean: opened.mean, std: opened.std, classNames: opened.classes ?? undefined,
        meta: { model: opened.name, source: isName ? source : fs.realpathSync(source), randomWeights: isName && !str(p, 'weights') && !pretrained },
        onImage: quiet ? undefined : (done, total, file) => { console.error(`[${done}/${total}] ${file}`); },
      });
    } catch (e) {
      if (e instanceof ExplainError) throw new UsageError(e.message, C);
      throw e;
    }
    if (flag(p, 'json')) {
      console.log(JSON.stringify(index, null, 2));
      return 0;
    }
    const name = (k: number): string => (opened.classes?.[k] !== undefined ? `${k} (${opened.classes[k]})` : String(k));
    for (const im of index.images) {
      const extra = im.layer ? `, layer ${im.layer} ${im.featureSize!.join('x')}` : im.completenessError !== undefined ? `, completeness error ${(100 * im.completenessError).toFixed(2)}%` : '';
      console.log(`${im.input}: class ${name(im.classIndex)} p=${im.probability.toFixed(3)}, predicted ${name(im.predicted)}${extra} -> ${im.overlay}`);
    }
    console.log(`${index.images.length} image${index.images.length === 1 ? '' : 's'} explained (${method}) into ${out} (index.json)`);
    return 0;
  } finally {
    model.dispose();
  }
}
