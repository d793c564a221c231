// convkit scale --base <model> --alpha a --beta b --gamma g --phi k: the compound-scaled model
// (depth x alpha^phi, width x beta^phi, resolution x gamma^phi), described, and written as
// initial weights plus a recipe that trains it.
import * as path from 'node:path';
import { MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIDE } from '../engine/limits.js';
import { flag, intOpt, numOpt, parse, str, UsageError } from './args.js';

export const HELP = `usage: convkit scale --base <model> --alpha <a> --beta <b> --gamma <g> --phi <k> [options]

Builds the compound-scaled version of an EfficientNet base (efficientnet_b0 ... b7): depth
times alpha^phi, width times beta^phi, resolution times gamma^phi, with the zoo's rounding
rules (channels to multiples of 8, repeats rounded up, the resolution to a multiple of 8).
Each unit of phi multiplies the MACs by about alpha * beta^2 * gamma^2 (2 for the paper's
1.2, 1.1, 1.15). Prints the scaled stage table, parameters and MACs against the base's.

options:
  --base <model>            the base (default efficientnet_b0)
  --alpha, --beta, --gamma  the coefficients, each >= 1 (default the paper's 1.2, 1.1, 1.15)
  --phi <k>                 the compound coefficient, >= 0 (required)
  --base-width <w>          the base's width multiplier (default the variant's)
  --base-depth <d>          the base's depth multiplier (default the variant's)
  --resolution <px>         the base's resolution (default the variant's, 224 for B0)
  --resolution-multiple <n> round scaled resolutions to a multiple of n (default 8)
  --num-classes <n>         classifier outputs (default 1000)
  --in-channels <n>         input channels (default 3)
  -o, --out <dir>           write model.safetensors (initial weights, with the metadata that
                            eval, explain and --init read) and recipe.json (train it with
                            convkit train --recipe <dir>/recipe.json)
  --json                    print the description as JSON
  -h, --help                this help`;

const C = 'scale';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    base: { type: 'string' }, alpha: { type: 'string' }, beta: { type: 'string' }, gamma: { type: 'string' }, phi: { type: 'string' },
    'base-width': { type: 'string' }, 'base-depth': { type: 'string' }, resolution: { type: 'string' }, 'resolution-multiple': { type: 'string' },
    'num-classes': { type: 'string' }, 'in-channels': { type: 'string' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' },
  }, { maxPositionals: 0 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const phi = numOpt(p, 'phi', C, 0, 64);
  if (phi === undefined) throw new UsageError('--phi is required (the compound coefficient, >= 0)', C);
  const coef = (k: 'alpha' | 'beta' | 'gamma', dflt: number): number => {
    const v = numOpt(p, k, C);
    if (v !== undefined && v < 1) throw new UsageError(`--${k} must be >= 1 (compound scaling grows depth, width and resolution, never shrinks them), got ${v}`, C);
    return v ?? dflt;
  };
  const { EFFICIENTNET_COEFFICIENTS: E, scaleBase, describeScaledBase, scaleStages, EFFICIENTNET_B0_STAGES, createModel } = await import('../models/index.js');
  const alpha = coef('alpha', E.alpha);
  const beta = coef('beta', E.beta);
  const gamma = coef('gamma', E.gamma);
  const numClasses = intOpt(p, 'num-classes', C, 1, MAX_CLASSES) ?? 1000;
  const inChannels = intOpt(p, 'in-channels', C, 1, MAX_CHANNELS) ?? 3;
  const base = {
    model: str(p, 'base') ?? 'efficientnet_b0', widthMult: numOpt(p, 'base-width', C, 1e-3, 64), depthMult: numOpt(p, 'base-depth', C, 1e-3, 64),
    resolution: intOpt(p, 'resolution', C, 1, MAX_IMAGE_SIDE), resolutionMultiple: intOpt(p, 'resolution-multiple', C, 1, 1024),
  };
  let scaled;
  let baseScaled;
  try {
    scaled = scaleBase(base, { alpha, beta, gamma, phi });
    baseScaled = scaleBase(base, { alpha, beta, gamma, phi: 0 });
  } catch (e) {
    throw new UsageError((e as Error).message, C);
  }
  const opts = { numClasses, inChannels };
  const d = describeScaledBase(scaled, opts);
  const d0 = describeScaledBase(baseScaled, opts);
  const stages = scaleStages(EFFICIENTNET_B0_STAGES, scaled.widthMult, scaled.depthMult)
    .map(({ inChannels: i, outChannels: o, numLayers: n }) => ({ inChannels: i, outChannels: o, numLayers: n }));
  const report = {
    ...scaled, params: d.params, macs: d.macs, baseParams: d0.params, baseMacs: d0.macs, baseResolution: baseScaled.resolution,
    macsRatio: d.macs / d0.macs, expectedRatio: scaled.flopsFactor ** phi, stages,
  };
  const out = str(p, 'out');
  if (out) {
    const { saveModelWeights } = await import('../train/checkpoint.js');
    const { writeFileAtomic } = await import('../io/atomic.js');
    const model = createModel(scaled.base, { ...opts, ...scaled.modelOptions });
    try {
      saveModelWeights(path.join(out, 'model.safetensors'), model, {
        convkit_model: scaled.base,
        convkit_model_options: JSON.stringify({ ...scaled.modelOptions, ...opts }),
        convkit_scaling: JSON.stringify({ alpha, beta, gamma, phi, resolution: scaled.resolution }),
      });
    } finally {
      model.dispose();
    }
    const r = scaled.resolution;
    const recipe = {
      model: scaled.base, modelOptions: scaled.modelOptions, imageSize: [r, r], numClasses, inChannels,
      augment: [{ name: 'resize', size: [r, r] }, { name: 'randomHorizontalFlip' }],
    };
    writeFileAtomic(path.join(out, 'recipe.json'), `${JSON.stringify(recipe, null, 2)}\n`);
  }
  if (flag(p, 'json')) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  const f = (v: number, k = 3): string => v.toFixed(k);
  console.log(`${scaled.base} scaled by alpha ${alpha}, beta ${beta}, gamma ${gamma} at phi ${phi} (alpha*beta^2*gamma^2 = ${f(scaled.flopsFactor)})`);
  console.log(`depth x${f(scaled.depthMult)}, width x${f(scaled.widthMult)}, resolution ${baseScaled.resolution} -> ${scaled.resolution}`);
  console.log('stage  in    out   layers');
  stages.forEach((s, i) => console.log(`${String(i + 1).padEnd(6)} ${String(s.inChannels).padEnd(5)} ${String(s.outChannels).padEnd(5)} ${s.numLayers}`));
  console.log(`params ${d.params.toLocaleString('en-US')} (base ${d0.params.toLocaleString('en-US')})`);
  console.log(`MACs ${(d.macs / 1e6).toFixed(1)} M (base ${(d0.macs / 1e6).toFixed(1)} M): x${f(report.macsRatio, 2)}, expected about x${f(report.expectedRatio, 2)}`);
  if (out) console.log(`wrote ${path.join(out, 'model.safetensors')} and ${path.join(out, 'recipe.json')}`);
  return 0;
}
