// Loads the libtorch addon once. Its surface (native_api.ts) stays inside src/engine;
// everything above sees typed Tensors.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Native } from './native_api.js';

export type { Handle, HandleCounts, Native } from './native_api.js';

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

function defaultThreads(): number {
  const fromEnv = Number(process.env.CONVKIT_NUM_THREADS ?? process.env.OMP_NUM_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism();
}

native.setNumThreads(defaultThreads());
