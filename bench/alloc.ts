// The memory allocators the benchmarks run on: glibc's malloc, or tcmalloc or jemalloc preloaded
// (LD_PRELOAD) from the Debian packages that scripts/setup.sh installs. Preloading one of them is
// PyTorch's recommended CPU set-up (its launcher, torch.backends.xeon.run_cpu, does it), so the
// benchmarks hold convkit against PyTorch on both. No engine here: bench/preload.ts uses it
// before libtorch loads.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ALLOCATORS = ['glibc', 'tcmalloc', 'jemalloc'] as const;
export type Allocator = (typeof ALLOCATORS)[number];

// env: jemalloc with the settings of PyTorch's launcher (torch/backends/xeon/run_cpu.py, since
// 2.0), but with the decay off (-1): the launcher's 9000000000 ms did not take here, and with the
// default decay jemalloc hands freed memory back so eagerly that fresh activations page-fault: a
// ResNet-50 forward took 10x as long (2.6 s against 0.3 s), for PyTorch as for convkit.
const LIBRARIES: Record<Exclude<Allocator, 'glibc'>, { file: string; pkg: string; env: NodeJS.ProcessEnv }> = {
  tcmalloc: { file: 'libtcmalloc_minimal.so.4', pkg: 'libtcmalloc-minimal4', env: {} },
  jemalloc: { file: 'libjemalloc.so.2', pkg: 'libjemalloc2', env: {
    MALLOC_CONF: 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1',
  } },
};

// ldconfig's tag for this process's architecture (its cache also lists other architectures'
// libraries on multiarch systems) and Debian's multiarch folder
const ARCH: Partial<Record<string, { tag: string; triple: string }>> = {
  x64: { tag: 'x86-64', triple: 'x86_64-linux-gnu' },
  arm64: { tag: 'AArch64', triple: 'aarch64-linux-gnu' },
};

/** The paths ldconfig's cache has for a library file of this architecture. */
function ldconfigPaths(file: string): string[] {
  const tag = ARCH[process.arch]?.tag;
  // ldconfig lives in /sbin, which is not on every user's PATH
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    let out: string;
    try {
      out = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 });
    } catch {
      continue;
    }
    return out.split('\n').flatMap((line) => {
      const m = /^\s*(\S+) \(([^)]*)\) => (\S+)$/.exec(line);
      return m && m[1] === file && (!tag || m[2].includes(tag)) ? [m[3]] : [];
    });
  }
  return [];
}

/** The allocator's shared library; the error names the Debian package that provides it. */
export function allocatorLibrary(a: Exclude<Allocator, 'glibc'>): string {
  const { file, pkg } = LIBRARIES[a];
  const triple = ARCH[process.arch]?.triple;
  const dirs = [...(triple ? [`/usr/lib/${triple}`, `/lib/${triple}`] : []), '/usr/lib64', '/usr/lib'];
  const found = [...ldconfigPaths(file), ...dirs.map((d) => join(d, file))].find((p) => existsSync(p));
  if (found === undefined) {
    throw new Error(`${a}: ${file} is neither in ldconfig's cache nor in ${dirs.join(', ')}; ` +
      `install the Debian package ${pkg} (bash scripts/setup.sh does)`);
  }
  return found;
}

/** The environment of a process on allocator a: LD_PRELOAD names its library (none for glibc), with its settings. */
export function preloadEnv(a: Allocator, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _, MALLOC_CONF: __, ...rest } = env;
  return a === 'glibc' ? rest : { ...rest, ...LIBRARIES[a].env, LD_PRELOAD: allocatorLibrary(a) };
}

/** The allocator this process runs on: the preloaded library its memory map shows, if any. */
export function currentAllocator(): Allocator {
  let maps = '';
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    // not Linux: LD_PRELOAD does not apply, so nothing was preloaded
  }
  return ALLOCATORS.find((a) => a !== 'glibc' && maps.includes(`/${LIBRARIES[a].file}`)) ?? 'glibc';
}
