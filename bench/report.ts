// Writes docs/benchmarks.md from the benchmarks' JSON results (bench/results/**/*.json).
//   node dist-dev/bench/report.js [--results bench/results] [--out docs/benchmarks.md]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/io/atomic.js';
import { parseResult, renderBenchmarks, type BenchResult } from './results.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const RESULTS_DIR = join(REPO, 'bench', 'results');
export const DOC_FILE = join(REPO, 'docs', 'benchmarks.md');

export function readResults(dir: string): BenchResult[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
  return files.map((f) => parseResult(readFileSync(f, 'utf8'), f));
}

/** Rewrites the markdown from every result under dir; returns how many results it holds. */
export function writeReport(dir = RESULTS_DIR, file = DOC_FILE): number {
  const results = readResults(dir);
  writeFileAtomic(file, renderBenchmarks(results));
  return results.length;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { results: { type: 'string' }, out: { type: 'string' } }, strict: true });
  const file = values.out ?? DOC_FILE;
  const n = writeReport(values.results ?? RESULTS_DIR, file);
  console.log(`${file}: ${n} result${n === 1 ? '' : 's'}`);
}
