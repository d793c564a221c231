// The launcher of `convkit train --nproc-per-node N`: starts N worker processes on this machine
// with torchrun's environment variables, forwards signals, and when one worker fails, gives the
// others time to stop on their own (their error names the failed rank) before ending them. No
// worker outlives the launcher. It loads no libtorch: the workers do.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:net';
import { DEFAULT_MASTER_PORT } from './env.js';

export interface LaunchOptions {
  nprocPerNode: number;
  /** machines in the job (default 1) and this one's index (default 0) */
  nnodes?: number;
  nodeRank?: number;
  /** rank 0's machine (default 127.0.0.1) and port (default: a free port on one machine, else 29500) */
  masterAddr?: string;
  masterPort?: number;
  /** what each worker runs: node <script> <args> */
  script: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** after a worker fails, how long the others get to stop by themselves; default 30 s */
  graceMs?: number;
  /** told of each worker's exit */
  onExit?: (e: WorkerExit) => void;
}

export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchResult {
  /** 0 when every worker succeeded; else the first failed worker's code (128 + signal number for a signal) */
  code: number;
  exits: WorkerExit[];
  /** the first worker that failed, if any */
  failed: WorkerExit | null;
  masterPort: number;
}

/** Set for the workers: a worker whose launcher is gone (killed) exits instead of training on (see watchLauncher). */
export const LAUNCHER_PID = 'CONVKIT_LAUNCHER_PID';

/**
 * In a worker started by launchWorkers: exits (code 1) once the launcher is gone, checked every
 * second between training steps, so that no worker outlives a killed launcher.
 */
export function watchLauncher(env: NodeJS.ProcessEnv = process.env): void {
  const pid = Number(env[LAUNCHER_PID]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  setInterval(() => {
    if (process.ppid !== pid) {
      process.stderr.write(`convkit: the launcher (pid ${pid}) is gone: worker rank ${env.RANK ?? '?'} exits\n`);
      process.exit(1);
    }
  }, 1000).unref();
}

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

/** A port free on this machine now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export function describeExit(e: WorkerExit): string {
  const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
  return `worker rank ${e.rank} (local rank ${e.localRank}, pid ${e.pid}) ${how}`;
}

function check(v: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

export async function launchWorkers(o: LaunchOptions): Promise<LaunchResult> {
  const nproc = check(o.nprocPerNode, '--nproc-per-node', 1, 1024);
  const nnodes = check(o.nnodes ?? 1, '--nnodes', 1, 1 << 16);
  const nodeRank = check(o.nodeRank ?? 0, '--node-rank', 0, nnodes - 1);
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (nnodes === 1 ? await freePort() : DEFAULT_MASTER_PORT);
  check(masterPort, '--master-port', 1, 65535);
  const base = o.env ?? process.env;
  // torchrun gives each worker one thread unless told otherwise; here each gets its share of the cores
  const threads = base.CONVKIT_NUM_THREADS || base.OMP_NUM_THREADS ? {} : { CONVKIT_NUM_THREADS: String(Math.max(1, Math.floor(availableParallelism() / nproc))) };
  const children: ChildProcess[] = [];
  const exits: WorkerExit[] = [];
  let failed: WorkerExit | null = null;
  let grace: NodeJS.Timeout | undefined;
  let kill: NodeJS.Timeout | undefined;

  const alive = (): ChildProcess[] => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const endAll = (): void => {
    for (const c of alive()) c.kill('SIGTERM');
    kill = setTimeout(() => { for (const c of alive()) c.kill('SIGKILL'); }, 5000);
  };
  // Ctrl-C reaches the workers from the terminal (same process group): they stop after their step
  // and save. The launcher waits; a second Ctrl-C ends them. SIGTERM (a scheduler) is passed on.
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts > 1) for (const c of alive()) c.kill('SIGKILL');
  };
  const onSigterm = (): void => { for (const c of alive()) c.kill('SIGTERM'); };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const done = Array.from({ length: nproc }, (_, local) => {
      const rank = nodeRank * nproc + local;
      const child = spawn(process.execPath, [o.script, ...o.args], {
        stdio: 'inherit',
        env: {
          ...base, ...threads, RANK: String(rank), LOCAL_RANK: String(local), WORLD_SIZE: String(nnodes * nproc),
          LOCAL_WORLD_SIZE: String(nproc), GROUP_RANK: String(nodeRank), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort),
          [LAUNCHER_PID]: String(process.pid),
        },
      });
      children.push(child);
      return new Promise<void>((resolve) => {
        child.on('error', () => undefined); // a spawn failure also ends in 'exit'/'close'
        child.on('close', (code, signal) => {
          const e: WorkerExit = { rank, localRank: local, pid: child.pid ?? -1, code, signal };
          exits.push(e);
          o.onExit?.(e);
          if ((code !== 0 || signal) && failed === null) {
            failed = e;
            grace = setTimeout(endAll, o.graceMs ?? 30_000);
          }
          resolve();
        });
      });
    });
    await Promise.all(done);
  } finally {
    clearTimeout(grace);
    clearTimeout(kill);
    for (const c of alive()) c.kill('SIGKILL');
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
  const f = failed as WorkerExit | null;
  const code = f === null ? 0 : f.signal ? 128 + (SIGNAL_CODES[f.signal] ?? 1) : f.code ?? 1;
  return { code, exits, failed: f, masterPort };
}
