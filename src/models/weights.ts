// Loading weights into a model, by name: from a weights file (a torchvision or timm safetensors or
// .pth, convkit's model.safetensors) or from the model / EMA section of a convkit training
// checkpoint. A file for another architecture fails listing the keys, and the model is untouched.
import { noGrad, type StateDict, type Tensor } from '../engine/index.js';
import { Linear, describeLoad, type LoadResult, type Module } from '../nn/index.js';
import { parseSafetensorsHeader, readPth, readSafetensors } from '../io/index.js';
import { isZipFile } from '../io/zip.js';

/** The safetensors metadata "format" of a convkit training checkpoint (model.*, optim.*, ema.* tensors). */
export const CHECKPOINT_FORMAT = 'convkit-checkpoint';

/** A checkpoint that cannot be used: names the file and what is wrong. */
export class CheckpointError extends Error {
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`checkpoint ${file}: ${message}`, options);
    this.name = 'CheckpointError';
  }
}

/**
 * A model state dict from any file convkit knows: a weights file (model.safetensors, a timm or
 * torchvision safetensors), a training checkpoint (its model.* or, with prefer 'ema', its ema.*
 * tensors) or a PyTorch .pth/.pt. The caller disposes the tensors.
 */
export function readModelWeights(file: string, o: { prefer?: 'model' | 'ema' } = {}): StateDict {
  // torch.save's format is a zip archive; anything else must be safetensors
  if (isZipFile(file, (m, cause) => new CheckpointError(file, m, { cause }))) return readPth(file);
  const header = parseSafetensorsHeader(file);
  const all = readSafetensors(file);
  if (header.metadata?.format !== CHECKPOINT_FORMAT) return all;
  const want = o.prefer === 'ema' && [...all.keys()].some((k) => k.startsWith('ema.')) ? 'ema.' : 'model.';
  const out: StateDict = new Map();
  for (const [k, t] of all) {
    if (k.startsWith(want)) out.set(k.slice(want.length), t);
    else t.dispose();
  }
  return out;
}

export interface LoadWeightsOptions {
  strict?: boolean;
  prefer?: 'model' | 'ema';
  /** keys to leave out of the load */
  skip?: (key: string) => boolean;
  /**
   * Transfer learning: Linear layers whose shape differs from the file's (a new class count)
   * keep their fresh initialisation instead of failing the load.
   */
  ignoreMismatchedHead?: boolean;
  /**
   * Transfer learning onto other images: when the model's first convolution takes another
   * number of input channels than the file's RGB stem, adapt the file's kernels as timm's
   * adapt_input_conv does (1 channel: the RGB kernels summed; C channels: the RGB kernels
   * repeated over C and scaled by 3/C).
   */
  adaptInputConv?: boolean;
}

export interface LoadWeightsReport extends LoadResult {
  /** head keys left at their fresh initialisation */
  skippedHead: string[];
  /** the stem weight adapted to the model's input channels (adaptInputConv), else null */
  adaptedStem: string | null;
}

/**
 * timm's adapt_input_conv: RGB kernels [O, 3, kh, kw] for a convolution of inChannels inputs.
 * With 1 channel the sum, so a gray image gives what the RGB model gives on that image repeated
 * to 3 channels; with C channels the kernels tiled over C and scaled by 3/C, which keeps the
 * response to a constant input.
 */
export function adaptInputConvWeight(w: Tensor, inChannels: number): Tensor {
  if (w.ndim !== 4 || w.shape[1] !== 3) throw new Error(`adaptInputConvWeight: expected RGB kernels [O, 3, kh, kw], got [${w.shape.join(', ')}]`);
  if (!(Number.isInteger(inChannels) && inChannels > 0)) throw new RangeError(`adaptInputConvWeight: inChannels must be a positive integer, got ${inChannels}`);
  return noGrad(() => {
    if (inChannels === 3) return w.clone();
    if (inChannels === 1) return w.sum(1, true);
    const tiled = w.repeat([1, Math.ceil(inChannels / 3), 1, 1]);
    const part = tiled.narrow(1, 0, inChannels);
    const out = part.mul(3 / inChannels);
    tiled.dispose();
    part.dispose();
    return out;
  });
}

/** The first convolution weight of the model (its stem) and its shape, if any. */
function stemWeight(model: Module<never[], unknown>): [string, number[]] | null {
  const first = model.namedParameters().find(([, p]) => p.ndim === 4);
  return first ? [first[0], [...first[1].shape]] : null;
}

/** Replaces an RGB stem in sd by its adaptation to the model's channels; returns its key or null. */
function adaptStem(model: Module<never[], unknown>, sd: StateDict): string | null {
  const stem = stemWeight(model);
  if (!stem) return null;
  const [key, want] = stem;
  const got = sd.get(key);
  if (!got || got.ndim !== 4 || got.shape[1] !== 3 || want[1] === 3) return null;
  if (got.shape[0] !== want[0] || got.shape[2] !== want[2] || got.shape[3] !== want[3]) return null;
  sd.set(key, adaptInputConvWeight(got, want[1]));
  got.dispose();
  return key;
}

/** The parameter names of every Linear layer (the classifier heads a class count shapes). */
function linearKeys(model: Module<never[], unknown>): Set<string> {
  const keys = new Set<string>();
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Linear) for (const [p] of m.ownParameters()) keys.add(name ? `${name}.${p}` : p);
  }
  return keys;
}

/**
 * Loads weights from a file into a model. A file for another architecture fails with the
 * missing, unexpected and mismatched keys listed, and the model untouched.
 */
export function loadModelWeights(model: Module<never[], unknown>, file: string, o: LoadWeightsOptions = {}): LoadWeightsReport {
  const sd = readModelWeights(file, { prefer: o.prefer });
  try {
    const adaptedStem = o.adaptInputConv ? adaptStem(model, sd) : null;
    const heads = o.ignoreMismatchedHead ? linearKeys(model) : new Set<string>();
    const skippedHead = model.compareStateDict(sd).mismatched.map((m) => m.key).filter((k) => heads.has(k));
    const skip = (k: string): boolean => skippedHead.includes(k) || (o.skip?.(k) ?? false);
    const kept: StateDict = new Map([...sd].filter(([k]) => !skip(k)));
    const diff = model.compareStateDict(kept);
    diff.missing = diff.missing.filter((k) => !skip(k));
    const bad = diff.missing.length + diff.unexpected.length + diff.mismatched.length > 0;
    if (bad && (o.strict ?? true)) {
      const names = [...sd.keys()];
      const heads = linearKeys(model);
      const headOnly = diff.mismatched.length > 0 && diff.missing.length + diff.unexpected.length === 0 && diff.mismatched.every((m) => heads.has(m.key));
      const stem = stemWeight(model)?.[0];
      const stemDiffers = !o.adaptInputConv && stem !== undefined && diff.mismatched.some((m) => m.key === stem && sd.get(stem)?.shape[1] === 3);
      const hint = (headOnly && !o.ignoreMismatchedHead ? ' (only the classifier differs: for a new class count, load with ignoreMismatchedHead; convkit train replaces the head unless --keep-head)' : '') +
        (stemDiffers ? ` (the RGB stem ${stem} can be adapted to the model's input channels: load with adaptInputConv)` : '');
      throw new CheckpointError(file, `does not fit model ${model.typeName}: ${describeLoad(diff)}${hint}` +
        `\n  the file holds ${names.length} tensors: ${names.slice(0, 40).join(', ')}${names.length > 40 ? ', ...' : ''}`);
    }
    model.loadStateDict(kept, { strict: false });
    return { ...diff, skippedHead, adaptedStem };
  } finally {
    for (const t of sd.values()) t.dispose();
  }
}
