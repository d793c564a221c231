// Loads the libtorch addon once. Its surface (native_api.ts) stays inside src/engine;
// everything above sees typed Tensors.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_THREADS } from './limits.js';

import type { Native } from './native_api.js';

export type { FusedConvState, Handle, HandleCounts, Native } from './native_api.js';

function findAddon(): string {
  if (process.env.CONVKIT_NATIVE) return process.env.CONVKIT_NATIVE;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'build', 'Release', 'convkit.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    'convkit: the native addon build/Release/convkit.node was not found. Build it with `npm run build:native` ' +
      '(it needs libtorch: `apt-get install libtorch-dev` on Debian, or LIBTORCH=/path/to/libtorch).',
  );
}

export const native: Native = createRequire(import.meta.url)(findAddon()) as Native;

// OMP_NUM_THREADS may hold OpenMP's list syntax ('4,2'): only a plain integer counts here.
function defaultThreads(): number {
  for (const name of ['CONVKIT_NUM_THREADS', 'OMP_NUM_THREADS']) {
    const v = process.env[name]?.trim();
    if (!v || (name === 'OMP_NUM_THREADS' && !/^\d+$/.test(v))) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) throw new RangeError(`${name} must be an integer in 1..${MAX_THREADS}, got '${v}'`);
    return n;
  }
  return availableParallelism();
}

native.setNumThreads(defaultThreads());
