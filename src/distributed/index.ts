// Data-parallel training over libtorch's c10d (Gloo): process groups, DDP, sharded data,
// SyncBatchNorm and the launcher. See docs/design.md, "Distributed".
export { workerEnv, inDistributedJob, DistributedEnvError, DEFAULT_MASTER_PORT, type WorkerEnv } from './env.js';
export {
  ProcessGroup, Work, DistributedError, DEFAULT_RENDEZVOUS_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, type ProcessGroupOptions, type ReduceOp,
} from './process_group.js';
export { DistributedDataParallel, type DdpOptions } from './ddp.js';
export { DDP_COMM_HOOKS, type DdpCommHook } from './comm_hooks.js';
export { convertSyncBatchNorm } from './sync_batchnorm.js';
export { launchWorkers, watchLauncher, describeExit, freePort, LAUNCHER_PID, type LaunchOptions, type LaunchResult, type WorkerExit } from './launch.js';
