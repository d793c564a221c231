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
import type { StateDict, Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { readSafetensors, writeSafetensors, parseSafetensorsHeader } from '../io/index.js';
import { parseJson } from '../io/json.js';
import { CHECKPOINT_FORMAT, CheckpointError } from '../models/weights.js';
import { describeValue } from './checks.js';

export { CHECKPOINT_FORMAT, CheckpointError };

// The training state nests a few levels (recipe.augment, schedule.schedulers, ...): 32 is ample.
const MAX_META_DEPTH = 32;

export const CHECKPOINT_VERSION = 1;

export interface CheckpointContents<M> {
  model: StateDict;
  optimizer?: StateDict;
  ema?: StateDict | null;
  rng?: Tensor | null;
  /** JSON-serialisable training state */
  meta: M;
}

export interface LoadedCheckpoint<M> {
  file: string;
  model: StateDict;
  optimizer: StateDict;
  ema: StateDict | null;
  rng: Tensor | null;
  meta: M;
  /** frees every tensor read */
  dispose(): void;
}

/** Writes a full training checkpoint atomically. */
export function saveCheckpoint<M>(file: string, c: CheckpointContents<M>): void {
  const tensors: StateDict = new Map();
  const put = (prefix: string, m: StateDict | null | undefined): void => {
    if (m) for (const [k, t] of m) tensors.set(`${prefix}.${k}`, t);
  };
  put('model', c.model);
  put('optim', c.optimizer);
  put('ema', c.ema);
  if (c.rng) tensors.set('rng.torch', c.rng);
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
    file, model: new Map(), optimizer: new Map(), ema: null, rng: null, meta,
    dispose: () => { for (const t of all.values()) t.dispose(); },
  };
  for (const [k, t] of all) {
    const dot = k.indexOf('.');
    const prefix = k.slice(0, dot);
    const rest = k.slice(dot + 1);
    if (prefix === 'model') out.model.set(rest, t);
    else if (prefix === 'optim') out.optimizer.set(rest, t);
    else if (prefix === 'ema') (out.ema ??= new Map()).set(rest, t);
    else if (k === 'rng.torch') out.rng = t;
    else {
      out.dispose();
      throw new CheckpointError(file, `unexpected tensor "${k}": expected names starting with model., optim., ema. or rng.torch`);
    }
  }
  if (out.model.size === 0) {
    out.dispose();
    throw new CheckpointError(file, 'holds no model.* tensors');
  }
  return out;
}

/** Writes the model's state dict alone, under PyTorch's names (torch loads it with safetensors). */
export function saveModelWeights(file: string, model: Module<never[], unknown> | StateDict, extra: Record<string, string> = {}): void {
  const sd = model instanceof Map ? model : model.stateDict();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, sd, { format: 'pt', ...extra });
}

