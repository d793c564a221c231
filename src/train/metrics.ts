// Classification metrics: running means, top-k counts, the confusion matrix and the per-class
// precision / recall / F1 report derived from it.
import { noGrad, type Tensor } from '../engine/index.js';

/** A sample-weighted running mean (loss over batches of different sizes). */
export class RunningMean {
  #sum = 0;
  #count = 0;
  add(value: number, n = 1): void {
    this.#sum += value * n;
    this.#count += n;
  }
  get mean(): number {
    return this.#count === 0 ? NaN : this.#sum / this.#count;
  }
  get count(): number {
    return this.#count;
  }
  reset(): void {
    this.#sum = 0;
    this.#count = 0;
  }
}

/**
 * How many rows of `logits` [N, C] have their target among the top k, for each k (k is capped
 * at C, so top-5 on a 3-class problem is top-3). Targets are class indices [N].
 */
export function topkCorrect(logits: Tensor, target: Tensor, ks: number[]): number[] {
  return noGrad(() => {
    const classes = logits.size(1);
    const kmax = Math.min(Math.max(...ks), classes);
    const [, idx] = logits.topk(kmax, 1, true, true);
    const hit = idx.eq(target.reshape([-1, 1]));
    const out = ks.map((k) => hit.narrow(1, 0, Math.min(k, classes)).sum().item());
    idx.dispose();
    hit.dispose();
    return out;
  });
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** true samples of this class */
  support: number;
}

export interface ClassReport {
  classes: ClassMetrics[];
  accuracy: number;
  macro: { precision: number; recall: number; f1: number };
  weighted: { precision: number; recall: number; f1: number };
  total: number;
}

/** counts[t * n + p]: samples of true class t predicted as p. */
export class ConfusionMatrix {
  readonly counts: Float64Array;
  constructor(readonly numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`ConfusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
    this.counts = new Float64Array(numClasses * numClasses);
  }

  static fromJSON(rows: number[][]): ConfusionMatrix {
    const cm = new ConfusionMatrix(rows.length);
    rows.forEach((r, t) => r.forEach((v, p) => { cm.counts[t * rows.length + p] = v; }));
    return cm;
  }

  add(truth: ArrayLike<number | bigint>, pred: ArrayLike<number | bigint>): void {
    if (truth.length !== pred.length) throw new RangeError(`ConfusionMatrix.add: ${truth.length} labels but ${pred.length} predictions`);
    const n = this.numClasses;
    for (let i = 0; i < truth.length; i++) {
      const t = Number(truth[i]);
      const p = Number(pred[i]);
      if (!(t >= 0 && t < n && p >= 0 && p < n)) throw new RangeError(`ConfusionMatrix.add: label ${t} or prediction ${p} outside [0, ${n})`);
      this.counts[t * n + p]++;
    }
  }

  at(truth: number, pred: number): number {
    return this.counts[truth * this.numClasses + pred];
  }

  get total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  get correct(): number {
    let c = 0;
    for (let i = 0; i < this.numClasses; i++) c += this.at(i, i);
    return c;
  }

  get accuracy(): number {
    const t = this.total;
    return t === 0 ? NaN : this.correct / t;
  }

  toJSON(): number[][] {
    const n = this.numClasses;
    return Array.from({ length: n }, (_, t) => Array.from(this.counts.subarray(t * n, t * n + n)));
  }

  report(classNames?: readonly string[]): ClassReport {
    const n = this.numClasses;
    const classes: ClassMetrics[] = [];
    for (let c = 0; c < n; c++) {
      let rowSum = 0;
      let colSum = 0;
      for (let k = 0; k < n; k++) {
        rowSum += this.at(c, k);
        colSum += this.at(k, c);
      }
      const tp = this.at(c, c);
      const precision = colSum === 0 ? 0 : tp / colSum;
      const recall = rowSum === 0 ? 0 : tp / rowSum;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      classes.push({ name: classNames?.[c] ?? String(c), precision, recall, f1, support: rowSum });
    }
    const total = this.total;
    const avg = (w: (c: ClassMetrics) => number): { precision: number; recall: number; f1: number } => {
      const ws = classes.map(w);
      const sw = ws.reduce((a, b) => a + b, 0) || 1;
      const f = (k: 'precision' | 'recall' | 'f1'): number => classes.reduce((a, c, i) => a + c[k] * ws[i], 0) / sw;
      return { precision: f('precision'), recall: f('recall'), f1: f('f1') };
    };
    return { classes, accuracy: this.accuracy, macro: avg(() => 1), weighted: avg((c) => c.support), total };
  }
}

/** A fixed-width text table. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function formatClassReport(r: ClassReport): string {
  const f = (v: number): string => v.toFixed(4);
  const rows: (string | number)[][] = r.classes.map((c) => [c.name, f(c.precision), f(c.recall), f(c.f1), c.support]);
  rows.push(['macro avg', f(r.macro.precision), f(r.macro.recall), f(r.macro.f1), r.total]);
  rows.push(['weighted avg', f(r.weighted.precision), f(r.weighted.recall), f(r.weighted.f1), r.total]);
  return formatTable(['class', 'precision', 'recall', 'f1', 'support'], rows);
}

export function formatConfusion(cm: ConfusionMatrix, classNames?: readonly string[]): string {
  const n = cm.numClasses;
  const names = Array.from({ length: n }, (_, i) => classNames?.[i] ?? String(i));
  const header = ['true \\ pred', ...names.map((_, i) => String(i))];
  const rows = names.map((name, t) => [`${t} ${name}`, ...Array.from({ length: n }, (_, p) => cm.at(t, p))]);
  return formatTable(header, rows);
}

/** One line of log.jsonl: what an epoch did. */
export interface EpochRecord {
  /** 1-based */
  epoch: number;
  /** optimizer steps so far */
  step: number;
  trainLoss: number;
  trainAcc: number;
  /** the split evaluated: 'val' (a held-out part of train) or 'test' */
  evalSplit: 'val' | 'test';
  valLoss: number;
  valAcc: number;
  valTop5: number;
  /** accuracy of the EMA weights, null when EMA is off */
  emaAcc: number | null;
  emaLoss: number | null;
  /** learning rate at the end of the epoch (first parameter group) */
  lr: number;
  imagesPerSec: number;
  epochSeconds: number;
  /** resident set size after the epoch, and the process peak so far (MB) */
  rssMB: number;
  peakRssMB: number;
  /** this evaluation averaged each image with its mirror (flip TTA; the final epoch when the recipe asks) */
  evalFlip?: boolean;
  /** ... and with its views shifted diagonally by +-evalTranslate pixels (0 or absent: not) */
  evalTranslate?: number;
}
