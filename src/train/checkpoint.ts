// Training checkpoints as one safetensors file each, so any safetensors reader can open them:
//
//   model.<key>   the model's state dict (PyTorch names)
//   optim.<key>   the optimizer's tensors (momentum buffers, Adam moments, ...)
//   ema.<key>     the EMA model's state dict, when EMA is on
//   rng.torch     libtorch's default generator state (uint8), as torch.get_rng_state()
//   __metadata__  {"format": "convkit-checkpoint", "format_version": "1",
//                  "convkit": "<JSON: epoch, step, recipe, ...>"}
// The format's version sits beside the caller's JSON, not inside it, so that no key of the
// caller's state can shadow it (files from before kept it inside as "version": still read).
//
// model.safetensors holds the model's state dict alone under its PyTorch names ({"format": "pt"}
// metadata, as Hugging Face writes), loadable by torch via safetensors and by loadStateDict.
// Every write goes through writeSafetensors: temp file, fsync, rename, so a crash mid-save
// leaves the previous file whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Tensor } from '../engine/index.js';
import { describeValue } from './checks.js';
import { Linear, describeLoad, type LoadResult, type Module } from '../nn/index.js';
import { readSafetensors, writeSafetensors, parseSafetensorsHeader, readPth } from '../io/index.js';
import { isZipFile } from '../io/zip.js';
import { parseJson } from '../io/json.js';

// The training state nests a few levels (recipe.augment, schedule.schedulers, ...): 32 is ample.
const MAX_META_DEPTH = 32;

export const CHECKPOINT_FORMAT = 'convkit-checkpoint';
export const CHECKPOINT_VERSION = 1;

export type TensorMap = Map<string, Tensor> | Record<string, Tensor>;

export interface CheckpointContents<M> {
  model: TensorMap;
  optimizer?: TensorMap;
  ema?: TensorMap | null;
  rng?: Tensor | null;
  /** JSON-serialisable training state */
  meta: M;
}

export interface LoadedCheckpoint<M> {
  file: string;
  model: Record<string, Tensor>;
  optimizer: Record<string, Tensor>;
  ema: Record<string, Tensor> | null;
  rng: Tensor | null;
  meta: M;
  /** frees every tensor read */
  dispose(): void;
}

/** A checkpoint that cannot be used: names the file and what is wrong. */
export class CheckpointError extends Error {
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`checkpoint ${file}: ${message}`, options);
    this.name = 'CheckpointError';
  }
}

const entries = (m: TensorMap): [string, Tensor][] => (m instanceof Map ? [...m] : Object.entries(m));

/** Writes a full training checkpoint atomically. */
export function saveCheckpoint<M>(file: string, c: CheckpointContents<M>): void {
  const tensors: Record<string, Tensor> = {};
  const put = (prefix: string, m: TensorMap | null | undefined): void => {
    if (m) for (const [k, t] of entries(m)) tensors[`${prefix}.${k}`] = t;
  };
  put('model', c.model);
  put('optim', c.optimizer);
  put('ema', c.ema);
  if (c.rng) tensors['rng.torch'] = c.rng;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, tensors, { format: CHECKPOINT_FORMAT, format_version: String(CHECKPOINT_VERSION), convkit: JSON.stringify(c.meta) });
}

/** The JSON training state of a checkpoint, without loading any tensor. */
export function readCheckpointMeta<M>(file: string): M {
  const header = parseSafetensorsHeader(file);
  return parseMeta<M>(file, header.metadata);
}

function parseMeta<M>(file: string, metadata: Record<string, string> | undefined): M {
  if (metadata?.format !== CHECKPOINT_FORMAT || typeof metadata.convkit !== 'string') {
    throw new CheckpointError(file, `not a convkit training checkpoint (its metadata has format ${JSON.stringify(metadata?.format ?? null)}, expected "${CHECKPOINT_FORMAT}"); a weights-only file can be used with --init or eval`);
  }
  let meta: unknown;
  try {
    meta = parseJson(metadata.convkit, MAX_META_DEPTH);
  } catch (e) {
    throw new CheckpointError(file, `its training state (metadata "convkit") is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new CheckpointError(file, `its training state (metadata "convkit") must be a JSON object, got ${describeValue(meta)}`);
  }
  const version = metadata.format_version !== undefined ? Number(metadata.format_version) : (meta as { version?: unknown }).version;
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(file, `unsupported checkpoint version ${describeValue(metadata.format_version ?? version ?? null)}; this convkit reads version ${CHECKPOINT_VERSION}`);
  }
  return meta as M;
}

/** Reads a full training checkpoint; the caller disposes the tensors (loaded.dispose()). */
export function loadCheckpoint<M>(file: string): LoadedCheckpoint<M> {
  const meta = readCheckpointMeta<M>(file);
  const all = readSafetensors(file);
  const out: LoadedCheckpoint<M> = {
    file, model: {}, optimizer: {}, ema: null, rng: null, meta,
    dispose: () => { for (const t of Object.values(all)) t.dispose(); },
  };
  for (const [k, t] of Object.entries(all)) {
    const dot = k.indexOf('.');
    const prefix = k.slice(0, dot);
    const rest = k.slice(dot + 1);
    if (prefix === 'model') out.model[rest] = t;
    else if (prefix === 'optim') out.optimizer[rest] = t;
    else if (prefix === 'ema') (out.ema ??= {})[rest] = t;
    else if (k === 'rng.torch') out.rng = t;
    else {
      out.dispose();
      throw new CheckpointError(file, `unexpected tensor "${k}": expected names starting with model., optim., ema. or rng.torch`);
    }
  }
  if (Object.keys(out.model).length === 0) {
    out.dispose();
    throw new CheckpointError(file, 'holds no model.* tensors');
  }
  return out;
}

/** Writes the model's state dict alone, under PyTorch's names (torch loads it with safetensors). */
export function saveModelWeights(file: string, model: Module<never[], unknown> | TensorMap, extra: Record<string, string> = {}): void {
  const sd = isModule(model) ? model.stateDict() : model;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, Object.fromEntries(entries(sd)), { format: 'pt', ...extra });
}

function isModule(m: unknown): m is Module<never[], unknown> {
  return typeof (m as { stateDict?: unknown }).stateDict === 'function';
}

/**
 * A model state dict from any file convkit knows: a weights file (model.safetensors, a timm or
 * torchvision safetensors), a training checkpoint (its model.* or, with prefer 'ema', its ema.*
 * tensors) or a PyTorch .pth/.pt. The caller disposes the tensors.
 */
export function readModelWeights(file: string, o: { prefer?: 'model' | 'ema' } = {}): Record<string, Tensor> {
  // torch.save's format is a zip archive; anything else must be safetensors
  if (isZipFile(file, (m, cause) => new CheckpointError(file, m, { cause }))) return readPth(file);
  const header = parseSafetensorsHeader(file);
  const all = readSafetensors(file);
  if (header.metadata?.format !== CHECKPOINT_FORMAT) return all;
  const want = o.prefer === 'ema' && Object.keys(all).some((k) => k.startsWith('ema.')) ? 'ema.' : 'model.';
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(all)) {
    if (k.startsWith(want)) out[k.slice(want.length)] = t;
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
}

export interface LoadWeightsReport extends LoadResult {
  /** head keys left at their fresh initialisation */
  skippedHead: string[];
}

/** The parameter names of every Linear layer (the classifier heads a class count shapes). */
export function linearKeys(model: Module<never[], unknown>): Set<string> {
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
    const heads = o.ignoreMismatchedHead ? linearKeys(model) : new Set<string>();
    const ownSd = model.stateDict();
    const skippedHead = [...heads].filter((k) => k in sd && ownSd.has(k) && !sameShape(sd[k].shape, ownSd.get(k)!.shape));
    const skip = (k: string): boolean => skippedHead.includes(k) || (o.skip?.(k) ?? false);
    const kept = Object.fromEntries(Object.entries(sd).filter(([k]) => !skip(k)));
    const own = new Map([...ownSd].filter(([k]) => !skip(k)));
    const diff: LoadResult = {
      missing: [...own.keys()].filter((k) => !(k in kept)),
      unexpected: Object.keys(kept).filter((k) => !own.has(k)),
      mismatched: [...own].filter(([k, t]) => k in kept && !sameShape(kept[k].shape, t.shape))
        .map(([k, t]) => ({ key: k, expected: t.shape, found: kept[k].shape })),
    };
    const bad = diff.missing.length + diff.unexpected.length + diff.mismatched.length > 0;
    if (bad && (o.strict ?? true)) {
      const names = Object.keys(sd);
      const heads = linearKeys(model);
      const headOnly = diff.mismatched.length > 0 && diff.missing.length + diff.unexpected.length === 0 && diff.mismatched.every((m) => heads.has(m.key));
      const hint = headOnly && !o.ignoreMismatchedHead ? ' (only the classifier differs: for a new class count, load with ignoreMismatchedHead; convkit train replaces the head unless --keep-head)' : '';
      throw new CheckpointError(file, `does not fit model ${model.typeName}: ${describeLoad(diff)}${hint}` +
        `\n  the file holds ${names.length} tensors: ${names.slice(0, 40).join(', ')}${names.length > 40 ? ', ...' : ''}`);
    }
    model.loadStateDict(kept, { strict: false });
    return { ...diff, skippedHead };
  } finally {
    for (const t of Object.values(sd)) t.dispose();
  }
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
