// Shared by the benchmarks: running the PyTorch side, statistics, and the results table.
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...cells.map(line)].join('\n');
}

export function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3);
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
