// Where a worker learns its place in the job: the environment variables torchrun, Slurm scripts
// and Kubernetes' PyTorchJob set, so those launchers start convkit unchanged.

/** A worker's place in a data-parallel job. */
export interface WorkerEnv {
  rank: number;
  worldSize: number;
  /** the rank among the processes of this machine */
  localRank: number;
  /** rank 0's address: it hosts the rendezvous store */
  masterAddr: string;
  masterPort: number;
}

/** The default port of torchrun and of c10d's TCPStore. */
export const DEFAULT_MASTER_PORT = 29500;

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new DistributedEnvError(`${name} is not set: a worker of a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun sets them; or start workers with convkit train --nproc-per-node)`);
  }
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new DistributedEnvError(`${name} must be an integer in ${min}..${max}, got '${raw}'`);
  }
  return n;
}

export class DistributedEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DistributedEnvError';
  }
}

/** Whether the environment describes a job of more than one process (WORLD_SIZE > 1). */
export function inDistributedJob(env: NodeJS.ProcessEnv = process.env): boolean {
  const w = env.WORLD_SIZE?.trim();
  return w !== undefined && w !== '' && w !== '1';
}

/** Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, each checked. */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const worldSize = intVar(env, 'WORLD_SIZE', 1, 1 << 20);
  const rank = intVar(env, 'RANK', 0, worldSize - 1);
  const localRank = intVar(env, 'LOCAL_RANK', 0, worldSize - 1, 0);
  const masterAddr = env.MASTER_ADDR?.trim() || '';
  if (masterAddr === '') throw new DistributedEnvError('MASTER_ADDR is not set: the address of the machine that runs rank 0');
  const masterPort = intVar(env, 'MASTER_PORT', 1, 65535, DEFAULT_MASTER_PORT);
  return { rank, worldSize, localRank, masterAddr, masterPort };
}
