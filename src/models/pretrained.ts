// Pretrained weights: torchvision's published ImageNet weights for the zoo's torchvision models
// (URL and SHA-256 prefix from torchvision's weight registry, in pretrained_data.ts), downloaded
// once into a cache and verified, then loaded by name; a model built for other data (another class
// count, gray images) gets a fresh head and an adapted stem.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { downloadFile, downloadFileSync, sha256File, type DownloadOptions } from '../io/download.js';
import type { Module } from '../nn/index.js';
import { loadModelWeights, type LoadWeightsReport } from './weights.js';
import { TORCHVISION_WEIGHTS } from './pretrained_data.js';
import { IMAGENET_CLASSES } from './imagenet_classes.js';
import { setPretrainedLoader } from './pretrained_hook.js';

export { IMAGENET_CLASSES };

/** One model's published weights (torchvision's Weights.DEFAULT) and how they were evaluated. */
export interface PretrainedEntry {
  /** the zoo's model name */
  name: string;
  /** torchvision's enum member, e.g. 'ResNet50_Weights.IMAGENET1K_V2' */
  weights: string;
  url: string;
  /** the start of the file's SHA-256, lowercase hex (the hash in torchvision's file name) */
  sha256Prefix: string;
  numParams: number;
  /** ImageNet-1K top-1 / top-5 as torchvision reports them */
  acc1: number;
  acc5: number;
  /** evaluation: resize the short side to resizeSize, centre-crop cropSize, with interpolation */
  resizeSize: number;
  cropSize: number;
  interpolation: 'bilinear' | 'bicubic' | 'nearest';
  /** torchvision turns on transform_input with these weights (GoogLeNet, Inception v3) */
  transformInput: boolean;
}

const entries = new Map<string, PretrainedEntry>(TORCHVISION_WEIGHTS.map((e) => [e.name, e]));

/** Registers (or replaces) the weights of a model name: a user's own weights, a test fixture. */
export function registerPretrained(e: PretrainedEntry): void {
  if (!/^[0-9a-f]{8,64}$/.test(e.sha256Prefix)) throw new RangeError(`registerPretrained ${e.name}: sha256Prefix must be 8-64 lowercase hex digits, got '${e.sha256Prefix}'`);
  entries.set(e.name, { ...e });
}

export function hasPretrained(name: string): boolean {
  return entries.has(name);
}

export function listPretrained(): PretrainedEntry[] {
  return [...entries.values()];
}

export function pretrainedEntry(name: string): PretrainedEntry {
  const e = entries.get(name);
  if (!e) throw new Error(`model '${name}' has no pretrained weights: models with weights are ${[...entries.keys()].sort().join(', ')}`);
  return e;
}

/** $CONVKIT_CACHE_DIR, else ~/.cache/convkit (XDG_CACHE_HOME respected). */
export function cacheDir(): string {
  const env = process.env.CONVKIT_CACHE_DIR;
  if (env) return path.resolve(env);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'convkit');
}

/** Where an entry's file lives in the cache: <cache>/weights/<torchvision's file name>. */
export function pretrainedPath(e: PretrainedEntry): string {
  return path.join(cacheDir(), 'weights', path.basename(new URL(e.url).pathname));
}

/**
 * The URL to fetch: the entry's, or with $CONVKIT_WEIGHTS_URL set, the same file name under that
 * base (an offline mirror, a loopback server in tests).
 */
export function pretrainedUrl(e: PretrainedEntry): string {
  const base = process.env.CONVKIT_WEIGHTS_URL;
  if (!base) return e.url;
  return `${base.replace(/\/+$/, '')}/${path.basename(new URL(e.url).pathname)}`;
}

// files verified in this process, by path, size and mtime: hashing a large file costs ~0.3 s
const verified = new Map<string, string>();

function stamp(file: string): string | null {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? `${st.size}:${st.mtimeMs}` : null;
  } catch {
    return null;
  }
}

/**
 * Whether the cached file is there and whole. A file whose hash does not match is moved aside
 * (name.corrupt), with a note on stderr, so that the next step downloads it afresh.
 */
function cachedOk(e: PretrainedEntry, file: string): boolean {
  const s = stamp(file);
  if (s === null) return false;
  if (verified.get(file) === s) return true;
  const digest = sha256File(file);
  if (digest.startsWith(e.sha256Prefix)) {
    verified.set(file, s);
    return true;
  }
  const aside = `${file}.corrupt`;
  fs.renameSync(file, aside);
  process.stderr.write(`convkit: cached weights ${file} have SHA-256 ${digest}, expected ${e.sha256Prefix}...: moved to ${aside}, downloading again\n`);
  return false;
}

export type FetchPretrainedOptions = Pick<DownloadOptions, 'timeoutMs' | 'progress'>;

export interface LoadPretrainedOptions extends FetchPretrainedOptions {
  /** a classifier of another class count starts afresh (default true); false: such a head fails the load */
  ignoreMismatchedHead?: boolean;
}

function downloadOptions(e: PretrainedEntry, o: FetchPretrainedOptions): DownloadOptions {
  return { sha256Prefix: e.sha256Prefix, timeoutMs: o.timeoutMs, progress: o.progress, label: `${e.name} (${e.weights})` };
}

/** The cached weights file of a model, downloaded first when missing or corrupt. */
export async function fetchPretrained(name: string, o: FetchPretrainedOptions = {}): Promise<string> {
  const e = pretrainedEntry(name);
  const file = pretrainedPath(e);
  if (cachedOk(e, file)) return file;
  await downloadFile(pretrainedUrl(e), file, downloadOptions(e, o));
  verified.set(file, stamp(file) ?? '');
  return file;
}

/** fetchPretrained for synchronous callers: a download runs in a child process. */
export function fetchPretrainedSync(name: string, o: FetchPretrainedOptions = {}): string {
  const e = pretrainedEntry(name);
  const file = pretrainedPath(e);
  if (cachedOk(e, file)) return file;
  downloadFileSync(pretrainedUrl(e), file, downloadOptions(e, o));
  verified.set(file, stamp(file) ?? '');
  return file;
}

// auxiliary classifiers the files hold and a model built without them lacks
const AUX = /^(aux1|aux2|AuxLogits)\./;

/** What loadPretrained did. */
export interface PretrainedReport extends LoadWeightsReport {
  entry: PretrainedEntry;
  file: string;
}

/**
 * Loads a model's published weights into it (downloading them when not cached). A head of
 * another class count keeps its fresh initialisation; a stem for other than 3 channels is adapted
 * from the RGB kernels; auxiliary heads the model was built without are left out of the load.
 */
export function loadPretrained(model: Module<never[], unknown>, name: string, o: LoadPretrainedOptions = {}): PretrainedReport {
  const e = pretrainedEntry(name);
  const file = fetchPretrainedSync(name, { timeoutMs: o.timeoutMs, progress: o.progress });
  const own = new Set(model.stateDict().keys());
  const report = loadModelWeights(model, file, {
    ignoreMismatchedHead: o.ignoreMismatchedHead ?? true,
    adaptInputConv: true,
    skip: (k) => AUX.test(k) && !own.has(k),
  });
  // torchvision switches transform_input on with these weights: they expect its re-normalisation
  const m = model as unknown as { transformInput?: boolean };
  if (e.transformInput && typeof m.transformInput === 'boolean' && report.adaptedStem === null) m.transformInput = true;
  return { ...report, entry: e, file };
}

setPretrainedLoader({
  check: (name) => { pretrainedEntry(name); },
  load: (model, name) => { loadPretrained(model, name); },
});
