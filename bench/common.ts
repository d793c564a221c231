// Shared by the benchmarks: running the PyTorch side on glibc's malloc and on tcmalloc, taking
// turns with convkit's side, statistics, and the results: printed as tables and, with
// --json <file>, written for docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheInfo, libtorchVersion } from '../src/engine/index.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { currentAllocator, preloadEnv } from './alloc.js';
import { machine, table, type BenchResult, type BenchTable } from './results.js';
import { stringArg } from './args.js';

export { fmt, table } from './results.js';
export { arg, choiceArg, listArg, listChoiceArg } from './args.js';

export const PYTHON = '/usr/bin/python3';
const PY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/py');

/** PyTorch's two set-ups: glibc's malloc, and tcmalloc preloaded as PyTorch recommends on CPUs. */
export const PY_ALLOCATORS = ['glibc', 'tcmalloc'] as const;
export type PyAllocator = (typeof PY_ALLOCATORS)[number];

/** Runs bench/py/<script> with args on the allocator and parses the JSON line it prints last. */
export function runPython<T>(script: string, args: (string | number)[], threads: number, alloc: PyAllocator = 'glibc'): T {
  const out = execFileSync(PYTHON, [resolve(PY_DIR, script), ...args.map(String)], {
    env: { ...preloadEnv(alloc), OMP_NUM_THREADS: String(threads) },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

export interface Sides<C, P> {
  /** one result per round */
  convkit: C[];
  pytorch: Record<PyAllocator, P[]>;
}

/**
 * Runs convkit's side and PyTorch's on each allocator in turn, round after round, so that a slow
 * spell of this shared machine does not fall on one side alone.
 */
export async function sideBySide<C, P>(rounds: number, convkit: () => C | Promise<C>, pytorch: (alloc: PyAllocator) => P): Promise<Sides<C, P>> {
  const sides: Sides<C, P> = { convkit: [], pytorch: { glibc: [], tcmalloc: [] } };
  for (let r = 0; r < rounds; r++) {
    sides.convkit.push(await convkit());
    for (const a of PY_ALLOCATORS) sides.pytorch[a].push(pytorch(a));
  }
  return sides;
}

/** The PyTorch columns' headers, e.g. 'PyTorch 1.13, glibc (ms)', 'PyTorch 1.13 + tcmalloc (ms)'. */
export function pytorchHeaders(unit: string, name = 'PyTorch 1.13'): string[] {
  return [`${name}, glibc malloc${unit}`, `${name} + tcmalloc${unit}`];
}

/** The ratio column's header: convkit against the faster of PyTorch's two set-ups. */
export const VS_BEST = 'convkit / best PyTorch';

/** convkit's figure over the better of PyTorch's: the lower time, or the higher rate. */
export function vsBest(convkit: number, pytorch: number[], better: 'lower' | 'higher'): number {
  return convkit / (better === 'lower' ? Math.min(...pytorch) : Math.max(...pytorch));
}

/** What convkit's side allocates with, for the tables' titles: 'convkit: own cache, glibc malloc'. */
export function convkitSetup(): string {
  const alloc = currentAllocator();
  return `convkit: ${cacheInfo().enabled ? 'own cache' : 'no cache'}, ${alloc === 'glibc' ? 'glibc malloc' : alloc}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

// Where the result goes and under what name: read when a bench starts, so that a bad value stops
// it before the run instead of after it.
function usage(message: string): never {
  console.error(message);
  process.exit(2);
}
// the file after --json
const JSON_FILE = ((): string | undefined => {
  const j = process.argv.indexOf('--json');
  if (j < 0) return undefined;
  const file = process.argv[j + 1];
  if (!file || file.startsWith('--')) usage(`--json: expected a file name, got ${file ?? 'nothing'}`);
  return file;
})();
// --variant v: the result is named <bench>_v, so that a second set-up of one bench (another
// model, another student) gets its own section in the benchmarks doc instead of replacing the first
const VARIANT = stringArg('variant');
if (VARIANT !== undefined && !/^\w+$/.test(VARIANT)) usage(`--variant: expected letters, digits or _, got '${VARIANT.slice(0, 40)}'`);

/**
 * Writes a bench's SVG plot: to --svg, else next to its --json result (same name, .svg), else
 * into fallbackDir as <bench>.svg. Returns the file; hand it to emit, which links a plot that
 * sits beside the result from the benchmarks doc.
 */
export function writePlot(bench: string, svg: string, fallbackDir: string): string {
  const json = JSON_FILE;
  const file = stringArg('svg') ?? (json ? json.replace(/\.json$/, '') + '.svg' : join(fallbackDir, `${bench}.svg`));
  writeFileAtomic(file, `${svg}\n`);
  console.error(`plot: ${file}`);
  return file;
}

/** Prints the tables; with --json <file>, also writes them with the machine, date and command. */
export function emit(bench: string, tables: BenchTable[], plot?: string): BenchResult {
  for (const [i, t] of tables.entries()) console.log(`${i ? '\n' : ''}${t.title}\n${table(t.headers, t.rows)}`);
  const args = process.argv.slice(2);
  const j = args.indexOf('--json');
  const file = JSON_FILE;
  const result: BenchResult = {
    bench: VARIANT === undefined ? bench : `${bench}_${VARIANT}`, date: new Date().toISOString(),
    command: ['node', relative(process.cwd(), process.argv[1]), ...args.filter((_, k) => j < 0 || (k !== j && k !== j + 1))].join(' '),
    machine: machine(), libtorch: libtorchVersion(), commit: commit(), tables,
    ...(plot && file && resolve(dirname(plot)) === resolve(dirname(file)) ? { plot: basename(plot) } : {}),
  };
  if (file) writeFileAtomic(file, `${JSON.stringify(result, null, 1)}\n`);
  return result;
}
