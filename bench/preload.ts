// Imported first by every benchmark, before the engine loads libtorch: chooses what convkit's
// side of the benchmark allocates with, so that its own caching allocator can be held against a
// general-purpose one.
//   --convkit-alloc glibc|tcmalloc|jemalloc  the malloc under convkit's process (default: as
//       started, glibc unless LD_PRELOAD says otherwise). A preload takes effect only when a
//       process starts, so the benchmark runs again in a child process with LD_PRELOAD set and
//       this one exits with the child's status.
//   --convkit-cache on|off  convkit's caching allocator (native/allocator.cc), which the engine
//       reads from CONVKIT_CACHING_ALLOCATOR when it loads (default on).
import { spawnSync } from 'node:child_process';
import { ALLOCATORS, currentAllocator, preloadEnv } from './alloc.js';
import { badArg, choiceArg } from './args.js';

const cache = choiceArg('convkit-cache', ['on', 'off'] as const);
if (cache !== undefined) process.env.CONVKIT_CACHING_ALLOCATOR = cache === 'on' ? '1' : '0';
const alloc = choiceArg('convkit-alloc', ALLOCATORS);
if (alloc !== undefined && alloc !== currentAllocator()) {
  let env: NodeJS.ProcessEnv;
  try {
    env = preloadEnv(alloc);
  } catch (e) {
    badArg(`--convkit-alloc: ${(e as Error).message}`);
  }
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  if (r.error) badArg(`--convkit-alloc ${alloc}: could not run the benchmark again: ${r.error.message}`);
  if (r.signal) console.error(`--convkit-alloc ${alloc}: the benchmark was killed by ${r.signal}`);
  process.exit(r.status ?? 1);
}
