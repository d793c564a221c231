// Step 1 of EfficientNet's method (Tan & Le 2019, section 3.3): fix phi = 1 and grid-search the
// coefficients alpha, beta, gamma >= 1 under alpha * beta^2 * gamma^2 ~ budget, training each
// candidate (the base scaled by them) on a short proxy schedule with the ordinary Trainer.
//
// A search is long, so it is resumable: search.json in the output folder records every finished
// candidate and is rewritten after each; a rerun skips them, continues an interrupted candidate
// from its own checkpoint, and refuses a folder that holds a search with other settings.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeScaledBase, scaleBase, scalingBaseVariant, type CompoundCoefficients, type ScalingBase } from '../models/scaling.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseJson } from '../io/json.js';
import { Trainer } from './trainer.js';
import { DATASETS, RecipeError, resolveRecipe, type Recipe } from './recipe.js';
import { openDataset } from './data.js';
import { modelEntry } from '../models/registry.js';

export interface ScaleSearchOptions {
  base: ScalingBase;
  dataset: string;
  dataRoot?: string | null;
  /** the target of alpha * beta^2 * gamma^2 (default 2: each unit of phi doubles the MACs) */
  budget?: number;
  /** the grid step of each coefficient (default 0.1) */
  step?: number;
  /** how far alpha * beta^2 * gamma^2 may be from the budget, relative (default 0.05) */
  tolerance?: number;
  /** epochs of each candidate's proxy training (default 2) */
  proxyEpochs?: number;
  /** recipe settings of every candidate (batch size, learning rate, subsets, ...) */
  recipe?: Partial<Recipe>;
  outDir: string;
  onEvent?: (e: ScaleSearchEvent) => void;
  /** called with each candidate's Trainer before it runs (a Ctrl-C handler calls its stop()) */
  onTrainer?: (t: Trainer) => void;
  /** checked before each candidate: true ends the search there (it resumes later) */
  shouldStop?: () => boolean;
}

export interface Candidate extends CompoundCoefficients {
  key: string;
  /** alpha * beta^2 * gamma^2 */
  product: number;
  widthMult: number;
  depthMult: number;
  resolution: number;
  params: number;
  macs: number;
}

export interface CandidateResult extends Candidate {
  /** top-1 of the last proxy epoch, and the best over the epochs */
  accuracy: number;
  bestAccuracy: number;
  seconds: number;
}

export type ScaleSearchEvent =
  | { type: 'plan'; candidates: Candidate[]; done: number }
  | { type: 'skip'; candidate: Candidate; index: number }
  | { type: 'candidateStart'; candidate: Candidate; index: number; resumed: boolean }
  | { type: 'candidateEnd'; result: CandidateResult; index: number }
  | { type: 'stopped'; done: number; total: number };

export interface ScaleSearchState {
  format: 'convkit-scale-search';
  version: 1;
  settings: { base: Required<Pick<ScalingBase, 'model'>> & ScalingBase; dataset: string; budget: number; step: number; tolerance: number; proxyEpochs: number; recipe: Partial<Recipe> };
  results: CandidateResult[];
}

export interface ScaleSearchResult {
  state: ScaleSearchState;
  /** finished candidates, best accuracy first */
  ranked: CandidateResult[];
  complete: boolean;
  files: { json: string; table: string };
}

const round4 = (v: number): number => Number(v.toFixed(4));

/** The grid: alpha, beta, gamma in 1, 1 + step, ... with |alpha beta^2 gamma^2 / budget - 1| <= tolerance. */
export function searchGrid(budget = 2, step = 0.1, tolerance = 0.05): CompoundCoefficients[] {
  if (!(Number.isFinite(budget) && budget >= 1)) throw new RangeError(`scale search: the budget must be a number >= 1 (alpha * beta^2 * gamma^2 with each coefficient >= 1 is at least 1), got ${budget}`);
  if (!(Number.isFinite(step) && step >= 0.01 && step <= 1)) throw new RangeError(`scale search: the grid step must be in 0.01..1, got ${step}`);
  if (!(Number.isFinite(tolerance) && tolerance >= 0 && tolerance < 1)) throw new RangeError(`scale search: the tolerance must be in [0, 1), got ${tolerance}`);
  const out: CompoundCoefficients[] = [];
  const hi = budget * (1 + tolerance);
  for (let i = 0; 1 + i * step <= hi + 1e-9; i++) {
    const alpha = round4(1 + i * step);
    for (let j = 0; alpha * (1 + j * step) ** 2 <= hi + 1e-9; j++) {
      const beta = round4(1 + j * step);
      // gamma on the grid nearest the one that meets the budget exactly
      const exact = Math.sqrt(budget / (alpha * beta * beta));
      const k = Math.max(0, Math.round((exact - 1) / step));
      const gamma = round4(1 + k * step);
      const product = alpha * beta * beta * gamma * gamma;
      if (Math.abs(product / budget - 1) <= tolerance + 1e-9) out.push({ alpha, beta, gamma });
    }
  }
  return out;
}

export function candidateKey(c: CompoundCoefficients): string {
  return `a${c.alpha.toFixed(2)}-b${c.beta.toFixed(2)}-g${c.gamma.toFixed(2)}`;
}

function sameSettings(a: ScaleSearchState['settings'], b: ScaleSearchState['settings']): string | null {
  for (const k of ['dataset', 'budget', 'step', 'tolerance', 'proxyEpochs'] as const) if (a[k] !== b[k]) return `${k} ${JSON.stringify(a[k])} (now ${JSON.stringify(b[k])})`;
  if (JSON.stringify(a.base) !== JSON.stringify(b.base)) return `base ${JSON.stringify(a.base)} (now ${JSON.stringify(b.base)})`;
  if (JSON.stringify(a.recipe) !== JSON.stringify(b.recipe)) return `recipe ${JSON.stringify(a.recipe)} (now ${JSON.stringify(b.recipe)})`;
  return null;
}

function readState(file: string): ScaleSearchState | null {
  if (!fs.existsSync(file)) return null;
  let s: ScaleSearchState;
  try {
    s = parseJson(fs.readFileSync(file, 'utf8'), 16) as unknown as ScaleSearchState;
  } catch (e) {
    throw new RecipeError(`${file}: not a readable scale search state (${(e as Error).message}); move it away to start afresh`);
  }
  if (s?.format !== 'convkit-scale-search' || s.version !== 1 || !Array.isArray(s.results)) throw new RecipeError(`${file}: not a convkit scale search state (format convkit-scale-search, version 1)`);
  return s;
}

/** The table of results: alpha, beta, gamma, MACs, params, accuracy, time. */
export function formatSearchTable(results: readonly CandidateResult[]): string {
  const head = 'alpha  beta   gamma  a*b^2*g^2  res  MACs (M)   params      top-1 %  best %  time (s)';
  const rows = results.map((r) => [
    r.alpha.toFixed(2).padEnd(6), r.beta.toFixed(2).padEnd(6), r.gamma.toFixed(2).padEnd(6), r.product.toFixed(3).padEnd(10),
    String(r.resolution).padEnd(4), (r.macs / 1e6).toFixed(1).padEnd(10), r.params.toLocaleString('en-US').padEnd(11),
    (100 * r.accuracy).toFixed(2).padEnd(8), (100 * r.bestAccuracy).toFixed(2).padEnd(7), r.seconds.toFixed(1),
  ].join(' '));
  return [head, ...rows].join('\n');
}

/** Channels, image side and class count of a dataset (the base resolution defaults to the side). */
function datasetInput(dataset: string, dataRoot: string | null, recipe: Partial<Recipe>, base: string): [number, number, number] {
  const r = resolveRecipe({ ...recipe, dataset: dataset as Recipe['dataset'], dataRoot });
  const d = openDataset(r, 'test', modelEntry(base).config);
  try {
    return [d.inputShape[0], d.inputShape[1], d.classes.length];
  } finally {
    d.dispose?.();
  }
}

/** Runs (or resumes) the search. */
export async function scaleSearch(o: ScaleSearchOptions): Promise<ScaleSearchResult> {
  if (!(DATASETS as readonly string[]).includes(o.dataset)) throw new RecipeError(`unknown dataset '${o.dataset}': expected one of ${DATASETS.join(', ')}`);
  scalingBaseVariant(o.base.model);
  const budget = o.budget ?? 2;
  const step = o.step ?? 0.1;
  const tolerance = o.tolerance ?? 0.05;
  const proxyEpochs = o.proxyEpochs ?? 2;
  if (!(Number.isInteger(proxyEpochs) && proxyEpochs >= 1)) throw new RangeError(`scale search: proxy epochs must be a positive integer, got ${proxyEpochs}`);
  const grid = searchGrid(budget, step, tolerance);
  const userRecipe = o.recipe ?? {};
  const [channels, side, classes] = datasetInput(o.dataset, o.dataRoot ?? null, userRecipe, o.base.model);
  const base: ScaleSearchState['settings']['base'] = { ...o.base, resolution: o.base.resolution ?? side, resolutionMultiple: o.base.resolutionMultiple ?? 4 };
  const settings: ScaleSearchState['settings'] = { base, dataset: o.dataset, budget, step, tolerance, proxyEpochs, recipe: userRecipe };
  fs.mkdirSync(o.outDir, { recursive: true });
  const files = { json: path.join(o.outDir, 'search.json'), table: path.join(o.outDir, 'search.txt') };
  const previous = readState(files.json);
  if (previous) {
    const diff = sameSettings(previous.settings, settings);
    if (diff) throw new RecipeError(`${files.json} holds a search with other settings: ${diff}; use another output folder`);
  }
  const state: ScaleSearchState = { format: 'convkit-scale-search', version: 1, settings, results: previous?.results ?? [] };
  const save = (): void => {
    writeFileAtomic(files.json, `${JSON.stringify(state, null, 2)}\n`);
    writeFileAtomic(files.table, `${formatSearchTable(ranked(state.results))}\n`);
  };
  const numClasses = userRecipe.numClasses ?? undefined;
  const candidates: Candidate[] = grid.map((c) => {
    const s = scaleBase(base, { ...c, phi: 1 });
    const d = describeScaledBase(s, { inChannels: channels, numClasses: numClasses ?? classes });
    return { key: candidateKey(c), ...c, product: s.flopsFactor, widthMult: s.widthMult, depthMult: s.depthMult, resolution: s.resolution, params: d.params, macs: d.macs };
  });
  const done = new Set(state.results.map((r) => r.key));
  o.onEvent?.({ type: 'plan', candidates, done: candidates.filter((c) => done.has(c.key)).length });
  save();
  for (const [index, c] of candidates.entries()) {
    if (done.has(c.key)) {
      o.onEvent?.({ type: 'skip', candidate: c, index });
      continue;
    }
    if (o.shouldStop?.()) {
      o.onEvent?.({ type: 'stopped', done: state.results.length, total: candidates.length });
      return { state, ranked: ranked(state.results), complete: false, files };
    }
    const dir = path.join(o.outDir, c.key);
    const last = path.join(dir, 'last.safetensors');
    const resumed = fs.existsSync(last);
    const r = c.resolution;
    const recipe: Partial<Recipe> = {
      ...userRecipe, model: base.model, modelOptions: { ...(userRecipe.modelOptions ?? {}), widthMult: c.widthMult, depthMult: c.depthMult },
      dataset: o.dataset as Recipe['dataset'], dataRoot: o.dataRoot ?? null, epochs: proxyEpochs, imageSize: [r, r],
      augment: [{ name: 'resize', size: [r, r] }, ...(userRecipe.augment ?? [])], outDir: dir,
      // a candidate's report is not read; its Grad-CAM grid would only cost time
      reportImages: userRecipe.reportImages ?? 0,
    };
    o.onEvent?.({ type: 'candidateStart', candidate: c, index, resumed });
    const trainer = resumed ? Trainer.resume(last) : Trainer.create(recipe, { overwrite: true });
    let result;
    let seconds;
    try {
      o.onTrainer?.(trainer);
      result = await trainer.run();
      // the epochs' training time, earlier sessions of a resumed candidate included
      seconds = trainer.history.reduce((a, h) => a + h.epochSeconds, 0);
    } finally {
      trainer.dispose();
    }
    if (result.interrupted) {
      o.onEvent?.({ type: 'stopped', done: state.results.length, total: candidates.length });
      return { state, ranked: ranked(state.results), complete: false, files };
    }
    const res: CandidateResult = { ...c, accuracy: result.last?.valAcc ?? 0, bestAccuracy: result.bestAcc, seconds };
    state.results.push(res);
    done.add(c.key);
    save();
    o.onEvent?.({ type: 'candidateEnd', result: res, index });
  }
  return { state, ranked: ranked(state.results), complete: true, files };
}

function ranked(results: readonly CandidateResult[]): CandidateResult[] {
  return [...results].sort((a, b) => b.accuracy - a.accuracy || a.macs - b.macs);
}
