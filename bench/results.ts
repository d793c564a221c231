// The benchmarks' results: as data (what each bench writes with --json, with the machine it ran
// on) and as markdown (the tables they print, and docs/benchmarks.md: one current table per bench
// and machine kind). No engine here, so the report can be written anywhere.
import { availableParallelism, cpus } from 'node:os';
import { cpuFlags } from '../src/engine/cpu.js'; // reads /proc/cpuinfo only: no libtorch

export type Cell = string | number;

export interface BenchTable {
  /** One line: what was measured, under which settings. */
  title: string;
  headers: string[];
  rows: Cell[][];
}

export interface Machine {
  /** CPU model, notable instruction sets, core count: results are comparable within a kind. */
  kind: string;
  cpu: string;
  isa: string[];
  cores: number;
}

export interface BenchResult {
  bench: string;
  /** ISO 8601 */
  date: string;
  /** The command line that produced it. */
  command: string;
  machine: Machine;
  libtorch: string;
  commit?: string;
  tables: BenchTable[];
  /** A plot (an SVG file name) beside the result's JSON, linked from the benchmarks doc. */
  plot?: string;
}

// The instruction sets that decide which kernels libtorch and convkit run.
const NOTABLE_ISA = ['amx_bf16', 'avx512_bf16', 'avx512f', 'avx2'];

export function machine(): Machine {
  const flags = cpuFlags(); // empty off Linux: the model and core count still tell machines apart
  const cpu = (cpus()[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  const isa = NOTABLE_ISA.filter((f) => flags.has(f));
  const cores = availableParallelism();
  return { kind: `${cpu}, ${isa.length ? isa.join(' ') : process.arch}, ${cores} cores`, cpu, isa, cores };
}

/** A machine kind as the name of its folder under bench/results. */
export const machineDir = (kind: string): string => kind.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 100);

export function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3);
}

// a '|' inside a cell would end it
const cell = (c: Cell): string => (typeof c === 'number' ? fmt(c) : c.replace(/\|/g, '\\|'));

export function table(headers: string[], rows: Cell[][]): string {
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(headers.map(cell)), line(headers.map(() => '---')), ...rows.map((r) => line(r.map(cell)))].join('\n');
}

/** The newest result of each bench on each machine kind. */
export function current(results: BenchResult[]): BenchResult[] {
  const latest = new Map<string, BenchResult>();
  for (const r of results) {
    const key = `${r.machine.kind}\n${r.bench}`;
    const seen = latest.get(key);
    if (!seen || seen.date < r.date) latest.set(key, r);
  }
  return [...latest.values()];
}

function section(r: BenchResult): string {
  const provenance = `${r.date.slice(0, 10)}, libtorch ${r.libtorch}${r.commit ? `, convkit ${r.commit}` : ''}: \`${r.command}\``;
  const plot = r.plot ? ['', `![${r.bench}](../bench/results/${machineDir(r.machine.kind)}/${r.plot})`] : [];
  return [`### ${r.bench}`, '', provenance, ...r.tables.flatMap((t) => ['', `${t.title}:`, '', table(t.headers, t.rows)]), ...plot].join('\n');
}

/** docs/benchmarks.md: per machine kind (sorted), the current result of each bench (sorted). */
export function renderBenchmarks(results: BenchResult[]): string {
  const byKind = new Map<string, BenchResult[]>();
  for (const r of current(results)) byKind.set(r.machine.kind, [...(byKind.get(r.machine.kind) ?? []), r]);
  const kinds = [...byKind.keys()].sort();
  const head = [
    '# Benchmarks',
    '',
    'Written by `npm run bench:report` from the JSON results in `bench/results/` that `npm run bench`',
    'leaves there; do not edit by hand. Each machine kind (CPU model, instruction sets, cores) has',
    "the newest result of every benchmark run on it; each result names its date and command.",
  ];
  if (kinds.length === 0) return `${[...head, '', 'No results yet: run `npm run bench`.'].join('\n')}\n`;
  const body = kinds.map((k) => {
    const rs = byKind.get(k)!.sort((a, b) => a.bench.localeCompare(b.bench));
    return [`## ${k}`, ...rs.map((r) => `\n${section(r)}`)].join('\n');
  });
  return `${[...head, '', ...kinds.map((k) => `- [${k}](#${anchor(k)})`), '', body.join('\n\n')].join('\n')}\n`;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isCell = (v: unknown): v is Cell => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
const isTable = (t: unknown): t is BenchTable => {
  const o = t as Partial<BenchTable> | null;
  return typeof o === 'object' && o !== null && isStr(o.title) && Array.isArray(o.headers) && o.headers.every(isStr) &&
    Array.isArray(o.rows) && o.rows.every((r) => Array.isArray(r) && r.every(isCell));
};

/** A result file's JSON, checked field by field; errors name the file and the field. */
export function parseResult(text: string, file: string): BenchResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  const o = v as Partial<BenchResult> | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${file}: expected a JSON object`);
  const bad = (field: string, expected: string): Error => new Error(`${file}: "${field}" must be ${expected}`);
  if (!isStr(o.bench) || !/^\w+$/.test(o.bench)) throw bad('bench', 'a benchmark name');
  if (!isStr(o.date) || Number.isNaN(Date.parse(o.date))) throw bad('date', 'an ISO date');
  if (!isStr(o.command)) throw bad('command', 'a string');
  if (!isStr(o.libtorch)) throw bad('libtorch', 'a string');
  if (o.commit !== undefined && !isStr(o.commit)) throw bad('commit', 'a string');
  if (typeof o.machine !== 'object' || o.machine === null || !isStr(o.machine.kind)) throw bad('machine.kind', 'a string');
  if (!Array.isArray(o.tables) || !o.tables.every(isTable)) throw bad('tables', 'a list of {title, headers, rows} of strings and numbers');
  if (o.plot !== undefined && !(isStr(o.plot) && /^[\w.-]+\.svg$/.test(o.plot))) throw bad('plot', 'the name of an .svg file beside the result');
  return o as BenchResult;
}
