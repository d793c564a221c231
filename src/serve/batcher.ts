// Dynamic batching as Triton does it: requests for one model queue up; a batch leaves when it is
// full (maxBatch samples) or when its oldest request has waited maxDelayMs, whichever comes first,
// and only when a worker is free to take it. While every worker is busy the queue fills, so under
// load batches grow by themselves; a lone request waits at most maxDelayMs. The queue is bounded:
// beyond maxQueue requests a new one is refused at once (the server answers 503).
import { performance } from 'node:perf_hooks';

export interface BatchRunner {
  /** workers free now */
  readonly idle: number;
  /** outputs [n, ...] of inputs [n, ...sample] */
  run(data: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }>;
}

export interface BatcherOptions {
  /** samples per batch at most */
  maxBatch: number;
  /** how long the oldest request waits for others to join it */
  maxDelayMs: number;
  /** requests waiting at most (not counting those running) */
  maxQueue: number;
  /** the shape of one sample, e.g. [3, 224, 224] */
  sampleShape: number[];
  /** called with the number of samples of each batch sent, and the queue depth after it */
  onBatch?: (samples: number, requests: number) => void;
  onQueue?: (depth: number) => void;
}

/** Why a request was refused or dropped; the server maps `code` to the HTTP status. */
export class BatchError extends Error {
  constructor(message: string, readonly code: 'queue-full' | 'timeout' | 'closed') {
    super(message);
    this.name = 'BatchError';
  }
}

/** One request's outputs: [n, ...] of its n samples. */
export interface BatchResult {
  data: Float32Array;
  dims: number[];
}

interface Job {
  data: Float32Array;
  n: number;
  at: number;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
  /** settled (answered, or dropped by its signal) */
  done: boolean;
}

export class Batcher {
  private readonly queue: Job[] = [];
  private queuedSamples = 0;
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** no more waiting for a batch to fill (shutting down) */
  private hurry = false;
  private drained: (() => void)[] = [];
  private readonly sampleSize: number;

  constructor(private readonly runner: BatchRunner, private readonly o: BatcherOptions) {
    this.sampleSize = o.sampleShape.reduce((a, b) => a * b, 1);
  }

  /** requests waiting (not yet in a batch) */
  get depth(): number {
    return this.queue.length;
  }

  /** batches running now */
  get inFlight(): number {
    return this.running;
  }

  /**
   * Queues n samples (data holds n x sampleShape values) and resolves with their outputs. Rejects
   * at once with BatchError 'queue-full' when the queue is full; when `signal` aborts first, a
   * request still waiting leaves the queue (one already running is only not waited for).
   */
  submit(data: Float32Array, n: number, signal?: AbortSignal): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new BatchError('the server is shutting down', 'closed'));
    if (!(Number.isInteger(n) && n >= 1 && n <= this.o.maxBatch)) {
      return Promise.reject(new RangeError(`a request holds 1 to ${this.o.maxBatch} samples (the max batch), got ${n}`));
    }
    if (data.length !== n * this.sampleSize) return Promise.reject(new RangeError(`${n} samples need ${n * this.sampleSize} values, got ${data.length}`));
    if (this.queue.length >= this.o.maxQueue) {
      return Promise.reject(new BatchError(`the queue is full (${this.o.maxQueue} requests waiting)`, 'queue-full'));
    }
    return new Promise<BatchResult>((resolve, reject) => {
      const job: Job = { data, n, at: performance.now(), resolve, reject, done: false };
      if (signal) {
        const abort = (): void => {
          if (job.done) return;
          job.done = true;
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            this.queuedSamples -= job.n;
            this.o.onQueue?.(this.queue.length);
          }
          reject(new BatchError('the request timed out', 'timeout'));
          this.settle();
        };
        if (signal.aborted) return abort();
        signal.addEventListener('abort', abort, { once: true });
      }
      this.queue.push(job);
      this.queuedSamples += n;
      this.o.onQueue?.(this.queue.length);
      this.pump();
    });
  }

  /** Sends batches while workers are free and a batch is due; otherwise waits for the oldest's deadline. */
  private pump(): void {
    while (this.queue.length > 0 && this.runner.idle > 0) {
      const wait = this.o.maxDelayMs - (performance.now() - this.queue[0].at);
      if (this.queuedSamples < this.o.maxBatch && wait > 0 && !this.hurry) {
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.pump();
          }, Math.ceil(wait));
        }
        return;
      }
      this.dispatch();
    }
  }

  private dispatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // requests in arrival order while they fit: one never splits across batches
    const jobs: Job[] = [];
    let samples = 0;
    while (this.queue.length > 0 && samples + this.queue[0].n <= this.o.maxBatch) {
      const j = this.queue.shift()!;
      samples += j.n;
      jobs.push(j);
    }
    this.queuedSamples -= samples;
    this.o.onQueue?.(this.queue.length);
    this.o.onBatch?.(samples, jobs.length);
    const data = new Float32Array(samples * this.sampleSize);
    let at = 0;
    for (const j of jobs) {
      data.set(j.data, at);
      at += j.data.length;
    }
    this.running++;
    this.runner.run(data, [samples, ...this.o.sampleShape]).then(
      ({ data: out, dims }) => {
        const per = out.length / dims[0];
        let row = 0;
        for (const j of jobs) {
          if (!j.done) {
            j.done = true;
            j.resolve({ data: out.slice(row * per, (row + j.n) * per), dims: [j.n, ...dims.slice(1)] });
          }
          row += j.n;
        }
      },
      (e: Error) => {
        for (const j of jobs) {
          if (!j.done) {
            j.done = true;
            j.reject(e);
          }
        }
      },
    ).finally(() => {
      this.running--;
      this.pump();
      this.settle();
    });
  }

  private settle(): void {
    if (this.queue.length === 0 && this.running === 0) for (const f of this.drained.splice(0)) f();
  }

  /** From now on batches leave at once, without waiting to fill (a server shutting down). */
  flush(): void {
    this.hurry = true;
    this.pump();
  }

  /** Refuses new requests, sends what is queued without waiting for the delay, resolves when all have run. */
  drain(): Promise<void> {
    this.closed = true;
    this.flush();
    return new Promise<void>((resolve) => {
      this.drained.push(resolve);
      this.settle();
    });
  }
}
