// Shared by the benchmarks: running the PyTorch side, statistics, arguments, and the results:
// printed as tables and, with --json <file>, written for docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libtorchVersion } from '../src/engine/index.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { machine, table, type BenchResult, type BenchTable } from './results.js';

export { fmt, table } from './results.js';

export const PYTHON = '/usr/bin/python3';
const PY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/py');

/** Runs bench/py/<script> with args and parses the JSON line it prints last. */
export function runPython<T>(script: string, args: (string | number)[], threads: number): T {
  const out = execFileSync(PYTHON, [resolve(PY_DIR, script), ...args.map(String)], {
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A comma-separated list option: --models a,b. */
export function listArg(name: string): string[] | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1].split(',') : undefined;
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** Prints the tables; with --json <file>, also writes them with the machine, date and command. */
export function emit(bench: string, tables: BenchTable[]): BenchResult {
  for (const [i, t] of tables.entries()) console.log(`${i ? '\n' : ''}${t.title}\n${table(t.headers, t.rows)}`);
  const args = process.argv.slice(2);
  const j = args.indexOf('--json');
  const result: BenchResult = {
    bench, date: new Date().toISOString(),
    command: ['node', relative(process.cwd(), process.argv[1]), ...args.filter((_, k) => j < 0 || (k !== j && k !== j + 1))].join(' '),
    machine: machine(), libtorch: libtorchVersion(), commit: commit(), tables,
  };
  if (j >= 0) {
    const file = args[j + 1];
    if (!file || file.startsWith('--')) throw new Error(`--json: expected a file name, got ${file ?? 'nothing'}`);
    writeFileAtomic(file, `${JSON.stringify(result, null, 1)}\n`);
  }
  return result;
}
