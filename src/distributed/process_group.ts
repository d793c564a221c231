// A c10d process group over Gloo: the TCPStore rendezvous, collectives with work handles, and
// errors that say which rank failed. The objects are libtorch's (native/distributed.cc); this
// file decides timeouts and turns c10d's messages into ones that name the rank, address and port.
import { native } from '../engine/native.js';
import type { Handle } from '../engine/native.js';
import { Tensor } from '../engine/index.js';
import type { WorkerEnv } from './env.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'product';

export interface ProcessGroupOptions extends WorkerEnv {
  /** how long rank 0 waits for every process to join, and the others for rank 0; default 300 s */
  rendezvousTimeoutMs?: number;
  /** how long a collective may wait for a peer before failing; default 30 min, PyTorch's */
  timeoutMs?: number;
  /** the network interface Gloo uses (GLOO_SOCKET_IFNAME); default: by MASTER_ADDR (loopback) or the hostname */
  iface?: string;
}

export const DEFAULT_RENDEZVOUS_TIMEOUT_MS = 300_000;
export const DEFAULT_TIMEOUT_MS = 1_800_000;
/** How long survivors watch the heartbeats before naming the ranks that stopped. */
const HEARTBEAT_WATCH_MS = 1500;
const ERROR_KEY = 'convkit/error/';

/** A failure of the distributed job: names the rank(s) when a peer died. */
export class DistributedError extends Error {
  /** ranks found dead (their heartbeat stopped); empty when none or unknown */
  readonly deadRanks: number[];
  constructor(message: string, deadRanks: number[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DistributedError';
    this.deadRanks = deadRanks;
  }
}

const handles = (ts: readonly Tensor[]): Handle[] => ts.map((t) => t.handle);
const seconds = (ms: number): string => `${+(ms / 1000).toFixed(1)} s`;

/** A collective in flight. wait() resolves on libuv's thread pool; waitSync() blocks. */
export class Work {
  #id: number;
  readonly #group: ProcessGroup;
  constructor(id: number, group: ProcessGroup) {
    this.#id = id;
    this.#group = group;
  }
  isCompleted(): boolean {
    return this.#id < 0 || native.distIsCompleted(this.#id);
  }
  async wait(): Promise<void> {
    const id = this.#take();
    try {
      await native.distWait(id);
    } catch (e) {
      throw this.#group.explain(e);
    }
  }
  waitSync(): void {
    const id = this.#take();
    try {
      native.distWaitSync(id);
    } catch (e) {
      throw this.#group.explain(e);
    }
  }
  #take(): number {
    if (this.#id < 0) throw new Error('Work: already waited');
    const id = this.#id;
    this.#id = -1;
    return id;
  }
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  readonly masterAddr: string;
  readonly masterPort: number;
  readonly timeoutMs: number;
  #id: number;

  private constructor(id: number, o: Required<Omit<ProcessGroupOptions, 'iface'>>) {
    this.#id = id;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.localRank = o.localRank;
    this.masterAddr = o.masterAddr;
    this.masterPort = o.masterPort;
    this.timeoutMs = o.timeoutMs;
  }

  /**
   * Joins the job: rank 0 starts the TCPStore at masterAddr:masterPort and waits for the others;
   * then Gloo connects every pair of processes. Resolves once all worldSize processes are in.
   */
  static async init(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const rdzv = o.rendezvousTimeoutMs ?? DEFAULT_RENDEZVOUS_TIMEOUT_MS;
    const timeout = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    for (const [k, v] of [['rendezvousTimeoutMs', rdzv], ['timeoutMs', timeout]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`ProcessGroup: ${k} must be a positive integer, got ${v}`);
    }
    const iface = o.iface ?? process.env.GLOO_SOCKET_IFNAME;
    // under torchrun (torchelastic) its agent hosts the store on MASTER_PORT and every restart of
    // the workers has its own key prefix, as torch.distributed's env:// rendezvous does
    const agent = process.env.TORCHELASTIC_USE_AGENT_STORE === 'True';
    const prefix = agent ? `/worker/attempt_${process.env.TORCHELASTIC_RESTART_COUNT ?? '0'}/` : '';
    let id: number;
    try {
      id = await native.distInit(o.rank, o.worldSize, o.masterAddr, o.masterPort, rdzv, timeout, iface, prefix, agent);
    } catch (e) {
      throw rendezvousError(e, o, rdzv);
    }
    return new ProcessGroup(id, { ...o, rendezvousTimeoutMs: rdzv, timeoutMs: timeout });
  }

  /** @internal The addon's id of the group, for DDP's reducer. */
  get nativeId(): number {
    return this.#group;
  }

  get #group(): number {
    if (this.#id < 0) throw new Error('ProcessGroup: destroyed');
    return this.#id;
  }

  /** Reduces the tensors (contiguous, in place) over all ranks. */
  allReduce(tensors: Tensor | readonly Tensor[], op: ReduceOp = 'sum'): Work {
    const ts = Array.isArray(tensors) ? tensors : [tensors as Tensor];
    return new Work(this.#call(() => native.distAllReduce(this.#group, handles(ts), op)), this);
  }

  /** Copies root's tensors (contiguous) into every rank's, in place. */
  broadcast(tensors: Tensor | readonly Tensor[], root = 0): Work {
    const ts = Array.isArray(tensors) ? tensors : [tensors as Tensor];
    return new Work(this.#call(() => native.distBroadcast(this.#group, handles(ts), this.#checkRank(root))), this);
  }

  /** Copies root's tensors (any layout, parameters included) into every rank's, in 250 MB buckets; blocks. */
  broadcastCoalesced(tensors: readonly Tensor[], root = 0): void {
    if (tensors.length === 0) return;
    this.#call(() => native.distBroadcastCoalesced(this.#group, handles(tensors), this.#checkRank(root)));
  }

  barrier(): Work {
    return new Work(this.#call(() => native.distBarrier(this.#group)), this);
  }

  /** The sum over ranks, differentiable: backward sums every rank's gradient (SyncBatchNorm). */
  allReduceDiff(x: Tensor): Tensor {
    return new Tensor(this.#call(() => native.distAllReduceDiff(this.#group, x.handle)));
  }

  /** Leaves a message for the survivors (a worker that is about to exit on an error). */
  reportFailure(message: string): void {
    try {
      native.distStoreSet(this.#group, `${ERROR_KEY}${this.rank}`, message.slice(0, 2000));
    } catch {
      // the store is gone too: the survivors will name this rank without its message
    }
  }

  /**
   * The error a failed collective should surface: c10d's message with the ranks whose heartbeat
   * stopped (and what they reported before exiting), or that rank 0, host of the store, is gone.
   */
  explain(err: unknown): Error {
    if (err instanceof DistributedError || this.#id < 0) return err as Error;
    const msg = stripOp(err instanceof Error ? err.message : String(err));
    const dead = native.distDeadRanks(this.#id, HEARTBEAT_WATCH_MS);
    const me = `rank ${this.rank} of ${this.worldSize}`;
    if (dead.length === 1 && dead[0] === -1) {
      return new DistributedError(`${me}: rank 0 stopped (its rendezvous store at ${this.masterAddr}:${this.masterPort} is unreachable) during a collective: ${msg}`, [0], { cause: err });
    }
    if (dead.length > 0) {
      const notes = dead.map((r) => {
        const why = this.#storeGet(`${ERROR_KEY}${r}`);
        return why ? `rank ${r} reported: ${why}` : `rank ${r} stopped without a word (killed, or out of memory?)`;
      });
      return new DistributedError(`${me}: rank${dead.length > 1 ? 's' : ''} ${dead.join(', ')} stopped (no heartbeat for ${seconds(HEARTBEAT_WATCH_MS)}); ${notes.join('; ')}. c10d: ${msg}`, dead, { cause: err });
    }
    if (/timed out|timeout/i.test(msg)) {
      return new DistributedError(`${me}: a collective timed out after ${seconds(this.timeoutMs)} although every rank is alive (one may be stuck or far behind; --dist-timeout sets the limit): ${msg}`, [], { cause: err });
    }
    return new DistributedError(`${me}: a collective failed: ${msg}`, [], { cause: err });
  }

  #storeGet(key: string): string | null {
    try {
      return native.distStoreGet(this.#id, key);
    } catch {
      return null;
    }
  }

  #checkRank(r: number): number {
    if (!Number.isInteger(r) || r < 0 || r >= this.worldSize) throw new RangeError(`ProcessGroup: root must be a rank in [0, ${this.worldSize}), got ${r}`);
    return r;
  }

  #call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw this.explain(e);
    }
  }

  /** Ends the group: stops the heartbeat, closes Gloo's connections. Safe to call twice. */
  destroy(): void {
    if (this.#id < 0) return;
    const id = this.#id;
    this.#id = -1;
    native.distDestroy(id);
  }
}

/** "distAllReduce([2] float32): msg" -> "msg": the op's name means nothing to a user here. */
function stripOp(m: string): string {
  return m.replace(/^dist\w+\([^)]*\): /, '').replace(/^backward\([^)]*\): /, '');
}

function rendezvousError(e: unknown, o: ProcessGroupOptions, rdzvMs: number): Error {
  const msg = stripOp(e instanceof Error ? e.message : String(e));
  const at = `${o.masterAddr}:${o.masterPort}`;
  const who = `rank ${o.rank} of ${o.worldSize}`;
  if (/address already in use|errno: 98/i.test(msg)) {
    return new DistributedError(`${who}: port ${o.masterPort} on ${o.masterAddr} is in use (another run or program holds it): choose another --master-port (MASTER_PORT). c10d: ${msg}`, [], { cause: e });
  }
  if (/waiting for clients|clients joined/i.test(msg)) {
    const joined = /(\d+)\/(\d+) clients joined/.exec(msg);
    const count = joined ? `only ${joined[1]} of ${joined[2]} processes joined` : 'not every process joined';
    return new DistributedError(`${who}: rendezvous at ${at} timed out after ${seconds(rdzvMs)}: ${count} (is every node started, with the same --nnodes/--nproc-per-node and MASTER_ADDR?)`, [], { cause: e });
  }
  if (/timed out|timeout|connect/i.test(msg)) {
    return new DistributedError(`${who}: rendezvous at ${at} did not complete within ${seconds(rdzvMs)}: ${o.rank === 0 ? 'the other processes did not all connect' : 'rank 0 could not be reached or did not finish it'} (check MASTER_ADDR, MASTER_PORT and that every process started). c10d: ${msg}`, [], { cause: e });
  }
  return new DistributedError(`${who}: rendezvous at ${at} failed: ${msg}`, [], { cause: e });
}
