// The worker threads of one model: each holds its own ONNX Runtime session, and takes one batch at
// a time. A worker that dies is replaced (its batch fails), so one bad run does not take the model
// down with it.
import { Worker } from 'node:worker_threads';
import type { WorkerInit, WorkerJob, WorkerReady, WorkerReply } from './worker.js';

export interface Logits {
  data: Float32Array;
  dims: number[];
}

interface Slot {
  worker: Worker;
  /** the job it runs, if any */
  job: { id: number; resolve: (l: Logits) => void; reject: (e: Error) => void } | null;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** what the session reported when it loaded */
  meta!: WorkerReady;

  private constructor(private readonly name: string, private readonly init: WorkerInit) {}

  /** Starts `workers` threads and waits until each has loaded the model (the first error fails it). */
  static async start(name: string, bytes: Uint8Array, workers: number, threads: number): Promise<WorkerPool> {
    const pool = new WorkerPool(name, { bytes, threads });
    try {
      const metas = await Promise.all(Array.from({ length: workers }, () => pool.spawn()));
      pool.meta = metas[0];
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private spawn(): Promise<WorkerReady> {
    // each worker gets its own copy of the bytes (a worker's session outlives none of them)
    const worker = new Worker(WORKER_URL, { workerData: this.init });
    const slot: Slot = { worker, job: null };
    this.slots.push(slot);
    return new Promise<WorkerReady>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: WorkerReply) => {
        if (m.kind === 'ready') {
          ready = true;
          resolve(m);
        } else if (m.kind === 'failed') {
          reject(new Error(`model ${this.name}: ONNX Runtime cannot load it: ${m.message}`));
        } else {
          const job = slot.job;
          if (!job || job.id !== m.id) return;
          slot.job = null;
          if (m.kind === 'result') job.resolve({ data: m.data, dims: m.dims });
          else job.reject(new Error(`model ${this.name}: inference failed: ${m.message}`));
        }
      });
      worker.on('error', (e) => {
        if (!ready) reject(new Error(`model ${this.name}: its worker failed to start: ${e.message}`));
      });
      worker.on('exit', (code) => {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        slot.job?.reject(new Error(`model ${this.name}: its worker stopped (exit code ${code}) during the batch`));
        slot.job = null;
        if (!ready) reject(new Error(`model ${this.name}: its worker stopped (exit code ${code}) before loading the model`));
        else if (!this.closed) this.spawn().catch(() => undefined);
      });
    });
  }

  /** Workers free to take a batch now. */
  get idle(): number {
    return this.slots.filter((s) => s.job === null).length;
  }

  /** Runs a batch on an idle worker; the caller checks `idle` first. */
  run(data: Float32Array, dims: number[]): Promise<Logits> {
    const slot = this.slots.find((s) => s.job === null);
    if (!slot) return Promise.reject(new Error(`model ${this.name}: no idle worker`));
    const id = this.nextId++;
    return new Promise<Logits>((resolve, reject) => {
      slot.job = { id, resolve, reject };
      slot.worker.postMessage({ id, data, dims } satisfies WorkerJob, [data.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
