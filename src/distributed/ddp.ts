// DistributedDataParallel, as PyTorch's: rank 0's parameters and buffers copied to every rank at
// the start, buffers again before each forward, and gradients averaged over ranks by c10d's own
// Reducer: about 25 MB buckets, filled in reverse parameter order and all-reduced from autograd
// hooks while the backward pass is still running, so communication overlaps computation. When
// backward() returns, every rank holds the same averaged gradients.
import { native } from '../engine/native.js';
import type { Tensor } from '../engine/index.js';
import type { Module, Parameter } from '../nn/index.js';
import type { ProcessGroup } from './process_group.js';
import { DDP_COMM_HOOKS, type DdpCommHook } from './comm_hooks.js';

export interface DdpOptions {
  /** bucket size for the gradient all-reduce, in MiB; default 25, as PyTorch */
  bucketCapMB?: number;
  /** the first bucket (the last layers' gradients, ready first), in MiB; default 1, as PyTorch */
  firstBucketMB?: number;
  /** copy rank 0's buffers (BatchNorm statistics) to every rank before each forward; default true */
  broadcastBuffers?: boolean;
  /**
   * Gradients as views into the all-reduce buckets, as PyTorch's gradient_as_bucket_view: the
   * averaged gradients are not copied back out of the buckets. Default true (PyTorch: false).
   * A gradient held across steps is then overwritten by the next synchronised backward pass.
   */
  gradientAsBucketView?: boolean;
  /**
   * How a bucket is averaged over ranks: 'allreduce' (float32, the default) or 'fp16' (PyTorch's
   * fp16_compress_hook: divided by the world size, all-reduced in float16 and cast back, which
   * halves the bytes sent and rounds the averaged gradients to float16's 11 significant bits).
   */
  commHook?: DdpCommHook;
}

const MiB = 1024 * 1024;

type AnyModule = Module<unknown[], unknown>;

export class DistributedDataParallel<M extends AnyModule = AnyModule> {
  readonly module: M;
  readonly group: ProcessGroup;
  readonly bucketBytes: number;
  readonly firstBucketBytes: number;
  readonly broadcastBuffers: boolean;
  readonly gradientAsBucketView: boolean;
  readonly commHook: DdpCommHook;
  #reducer = -1;
  #params: Parameter[] = [];
  #sync = true;
  #lastBackward: { ms: number } | null = null;

  constructor(module: M, group: ProcessGroup, o: DdpOptions = {}) {
    const mb = (v: number | undefined, d: number, what: string): number => {
      const x = v ?? d;
      if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`DistributedDataParallel: ${what} must be a positive number of MiB, got ${x}`);
      return Math.round(x * MiB);
    };
    this.module = module;
    this.group = group;
    this.bucketBytes = mb(o.bucketCapMB, 25, 'bucketCapMB');
    this.firstBucketBytes = mb(o.firstBucketMB, 1, 'firstBucketMB');
    this.broadcastBuffers = o.broadcastBuffers ?? true;
    // On by default, unlike PyTorch, because convkit's zeroGrad() sets grads to null: c10d's
    // Reducer then copies each fresh gradient into its bucket (dividing by the world size on the
    // way), points param.grad at the bucket and, after the all-reduce, has nothing to copy back;
    // with zeroGrad(false) backward accumulates into the bucket itself. Either way the optimizer
    // reads the same averaged values, in the parameter's own strides (channels-last included), and
    // the step saves one pass over all the gradients and their memory.
    this.gradientAsBucketView = o.gradientAsBucketView ?? true;
    this.commHook = o.commHook ?? 'allreduce';
    if (!DDP_COMM_HOOKS.includes(this.commHook)) {
      throw new RangeError(`DistributedDataParallel: commHook must be ${DDP_COMM_HOOKS.map((h) => `'${h}'`).join(' or ')}, got '${String(this.commHook)}'`);
    }
    this.syncModuleStates();
  }

  /** Copies rank 0's parameters and buffers into every rank's model. */
  syncModuleStates(): void {
    const tensors: Tensor[] = [...this.module.parameters(), ...this.module.namedBuffers().map(([, b]) => b)];
    this.group.broadcastCoalesced(tensors, 0);
  }

  /** The module's forward, after copying rank 0's buffers to every rank (broadcastBuffers). */
  forward(...inputs: Parameters<M['call']>): ReturnType<M['call']> {
    this.beforeForward();
    return (this.module.call as (...a: unknown[]) => ReturnType<M['call']>)(...inputs);
  }

  /** What forward() does before the module runs, for loops that call the module themselves. */
  beforeForward(): void {
    if (!this.broadcastBuffers || this.group.worldSize === 1) return;
    const buffers = this.module.namedBuffers().map(([, b]) => b);
    if (buffers.length) this.group.broadcastCoalesced(buffers, 0);
  }

  /**
   * loss.backward(), with the gradients all-reduced during it (averaged over ranks) unless
   * inside noSync(). Errors of the all-reduce name the rank that failed.
   */
  backward(loss: Tensor): void {
    const t0 = performance.now();
    this.beforeBackward();
    try {
      loss.backward();
    } catch (e) {
      throw this.#sync ? this.group.explain(e) : e;
    }
    if (this.#sync && this.#reducer >= 0) this.#lastBackward = { ms: performance.now() - t0 };
  }

  /**
   * The last synchronised backward pass: its duration and when the last gradient was ready (c10d
   * records when each parameter's gradient arrived), both in ms from its start. Buckets are
   * all-reduced as they fill, so what follows the last gradient is the communication the backward
   * pass could not hide.
   */
  lastBackwardTimeline(): { backwardMs: number; lastGradientMs: number } | null {
    if (!this.#lastBackward || this.#reducer < 0) return null;
    const ready = native.distReducerReadyTimes(this.#reducer);
    return { backwardMs: this.#lastBackward.ms, lastGradientMs: Math.max(0, ...ready) };
  }

  /** Arms the reducer for the next backward pass (what backward() does before loss.backward()). */
  beforeBackward(): void {
    if (!this.#sync || this.group.worldSize === 1) return;
    native.distReducerPrepare(this.#ensureReducer());
  }

  /**
   * Runs fn with gradient synchronisation off, as DDP's no_sync(): backward passes inside only
   * accumulate local gradients; the first backward outside reduces the accumulated sum.
   */
  noSync<T>(fn: () => T): T {
    const prev = this.#sync;
    this.#sync = false;
    try {
      return fn();
    } finally {
      this.#sync = prev;
    }
  }

  get syncing(): boolean {
    return this.#sync;
  }

  /** Elements per gradient bucket, in the order they are reduced (the reducer is built on first use). */
  bucketSizes(): number[] {
    return this.group.worldSize === 1 ? [] : native.distReducerBuckets(this.#ensureReducer());
  }

  /** The reducer over the parameters that require grad now; rebuilt when that set changes (a frozen backbone). */
  #ensureReducer(): number {
    const trainable = this.module.parameters().filter((p) => p.requiresGrad);
    const same = this.#reducer >= 0 && trainable.length === this.#params.length && trainable.every((p, i) => p === this.#params[i]);
    if (same) return this.#reducer;
    this.#dropReducer();
    if (trainable.length === 0) throw new Error('DistributedDataParallel: no parameter requires grad');
    const handles = trainable.map((p) => p.handle);
    this.#reducer = native.distReducer(this.group.nativeId, handles, this.bucketBytes, this.firstBucketBytes, this.gradientAsBucketView, this.commHook);
    this.#params = trainable;
    return this.#reducer;
  }

  #dropReducer(): void {
    if (this.#reducer >= 0) native.distReducerDestroy(this.#reducer);
    this.#reducer = -1;
    this.#params = [];
  }

  /** Frees the reducer (its autograd hooks); the module stays the caller's. */
  dispose(): void {
    this.#dropReducer();
  }
}
