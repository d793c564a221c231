// Loading checkpoints into models by name: safetensors or PyTorch's .pth, with transfer
// learning (a classifier whose class count differs is skipped when asked, and reported).
import { closeSync, openSync, readSync } from 'node:fs';
import { dispose, type Tensor } from '../engine/index.js';
import { readPth } from '../io/pth.js';
import { readSafetensors } from '../io/safetensors.js';
import { Linear, describeLoad, type LoadResult, type Module } from '../nn/index.js';

export interface LoadWeightsOptions {
  /** Skip classifier layers whose class count differs (transfer learning); default false. */
  ignoreMismatchedHead?: boolean;
  /** For .pth training checkpoints: the top-level key that holds the state dict. */
  key?: string;
  /** Strip this prefix from every key first (e.g. 'module.' from DataParallel checkpoints). */
  stripPrefix?: string;
}

export interface LoadWeightsReport extends LoadResult {
  file: string;
  loaded: number;
  /** classifier keys left at their fresh initialisation because their shapes differ */
  skippedHead: string[];
}

/** Reads a checkpoint file by its content: a zip is a .pth, anything else must be safetensors. */
export function readCheckpoint(file: string, opts: { key?: string } = {}): Record<string, Tensor> {
  const magic = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return magic.readUInt32LE(0) === 0x04034b50 ? readPth(file, { key: opts.key }) : readSafetensors(file);
}

/** The parameter names of every Linear layer: the classifier heads a class count shapes. */
function headKeys(model: Module<never[], unknown>): Set<string> {
  const keys = new Set<string>();
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Linear) for (const p of ['weight', 'bias']) keys.add(name ? `${name}.${p}` : p);
  }
  return keys;
}

/**
 * Loads a checkpoint into a model by parameter name. Everything must fit, except, when
 * ignoreMismatchedHead is set, Linear layers whose output count differs: those keep their
 * fresh weights and are listed in the report. Any other mismatch is an error listing the keys.
 */
export function loadWeights(model: Module<never[], unknown>, file: string, opts: LoadWeightsOptions = {}): LoadWeightsReport {
  const raw = readCheckpoint(file, { key: opts.key });
  const state = new Map<string, Tensor>();
  for (const [k, t] of Object.entries(raw)) {
    state.set(opts.stripPrefix && k.startsWith(opts.stripPrefix) ? k.slice(opts.stripPrefix.length) : k, t);
  }
  try {
    const result = model.compareStateDict(state);
    const heads = headKeys(model);
    const skippedHead = opts.ignoreMismatchedHead
      ? result.mismatched.filter((m) => heads.has(m.key) && m.expected.slice(1).join() === m.found.slice(1).join()).map((m) => m.key)
      : [];
    const rest: LoadResult = { ...result, mismatched: result.mismatched.filter((m) => !skippedHead.includes(m.key)) };
    if (rest.missing.length + rest.unexpected.length + rest.mismatched.length > 0) {
      const hint = result.mismatched.length && !opts.ignoreMismatchedHead ? ' (for a new class count, load with ignoreMismatchedHead)' : '';
      throw new Error(`checkpoint ${file} does not fit ${model.typeName}: ${describeLoad(rest)}${hint}`);
    }
    // everything but the skipped head fits: copy it
    for (const k of skippedHead) state.delete(k);
    model.loadStateDict(state, { strict: false });
    return { ...result, file, loaded: state.size, skippedHead };
  } finally {
    dispose(Object.values(raw));
  }
}
