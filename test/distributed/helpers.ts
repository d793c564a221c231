// Real worker processes on the loopback interface for the distributed tests: each test's
// children are killed when it ends, whatever happened, with their own children (each runs in
// its own process group, which the cleanup kills whole).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** A port free on 127.0.0.1 now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** exit code, or the signal's name */
  done: Promise<number | string>;
  /** resolves once stdout holds `text` */
  waitFor(text: string): Promise<void>;
}

/** Tracks children so a test's cleanup kills them all. */
export class Procs {
  readonly all: Proc[] = [];

  /** node <script> <args>; or `command` <script> <args> */
  spawn(script: string, args: string[], env: Record<string, string>, command = process.execPath): Proc {
    const child = spawn(command, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const p: Proc = {
      child, stdout: '', stderr: '',
      done: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1))),
      waitFor: (text) => new Promise((resolve, reject) => {
        const check = (): void => {
          if (p.stdout.includes(text)) resolve();
        };
        child.stdout!.on('data', check);
        child.on('exit', () => (p.stdout.includes(text) ? resolve() : reject(new Error(`exited before printing '${text}': ${p.stderr}`))));
        check();
      }),
    };
    child.stdout!.on('data', (d: Buffer) => { p.stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { p.stderr += d.toString(); });
    this.all.push(p);
    return p;
  }

  /** Rank r of a job of `world` processes, torchrun's variables set. */
  worker(rank: number, world: number, port: number, env: Record<string, string> = {}): Proc {
    return this.spawn(WORKER, [], { RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ...env });
  }

  /** SIGKILLs every child's process group and waits for the children. */
  async killAll(): Promise<void> {
    for (const p of this.all) {
      try {
        process.kill(-p.child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
    await Promise.all(this.all.map((p) => p.done));
  }
}

/**
 * Rejects after ms: a hung child fails the test instead of the suite. `what` names the wait in
 * the error; a function is asked at the timeout, to show the output so far.
 */
export function within<T>(ms: number, p: Promise<T>, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout;
  const name = (): string => (typeof what === 'function' ? what() : what);
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${name()}: no result within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
