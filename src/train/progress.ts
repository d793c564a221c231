// A progress bar for one epoch: redrawn in place on a terminal, or one plain line every ~10%
// when stderr is a file or a pipe (CI logs stay short).

export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** total steps */
  total: number;
  /** shown first, e.g. 'epoch 3/10' */
  label: string;
  stream?: ProgressStream;
  /** force the terminal (true) or line (false) style; defaults to stream.isTTY */
  tty?: boolean;
  /** the step the bar starts from (a resumed epoch) */
  start?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #total: number;
  readonly #label: string;
  readonly #start: number;
  readonly #t0 = performance.now();
  #lastDraw = 0;
  #lastDecile: number;
  #drawn = false;

  constructor(o: ProgressOptions) {
    this.#stream = o.stream ?? process.stderr;
    this.#tty = o.tty ?? Boolean(this.#stream.isTTY);
    this.#total = Math.max(1, o.total);
    this.#label = o.label;
    this.#start = o.start ?? 0;
    this.#lastDecile = Math.floor((10 * this.#start) / this.#total);
  }

  /** done: steps finished so far (absolute); fields: 'loss 0.512' style extras. */
  update(done: number, fields: Record<string, string> = {}): void {
    const now = performance.now();
    const frac = Math.min(1, done / this.#total);
    const elapsed = (now - this.#t0) / 1000;
    const rate = (done - this.#start) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.#total - done) / rate : NaN;
    const extras = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');
    const text = `${this.#label} ${done}/${this.#total}  ${extras}  ETA ${formatDuration(eta)}`;
    if (this.#tty) {
      if (now - this.#lastDraw < 100 && done < this.#total) return;
      this.#lastDraw = now;
      const width = Math.max(10, Math.min(30, (this.#stream.columns ?? 100) - text.length - 10));
      const filled = Math.round(frac * width);
      const bar = `[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}]`;
      this.#stream.write(`\r\x1b[2K${bar} ${String(Math.floor(frac * 100)).padStart(3)}% ${text}`);
      this.#drawn = true;
      return;
    }
    const decile = Math.floor(frac * 10);
    if (decile > this.#lastDecile) {
      this.#lastDecile = decile;
      this.#stream.write(`${String(Math.floor(frac * 100)).padStart(3)}% ${text}\n`);
    }
  }

  /** Ends the bar and prints the epoch's summary line. */
  finish(summary?: string): void {
    if (this.#tty && this.#drawn) this.#stream.write('\r\x1b[2K');
    if (summary) this.#stream.write(`${summary}\n`);
  }
}
