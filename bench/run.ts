// Runs the benchmarks, each in its own process, and keeps each one's JSON result as
// bench/results/<machine kind>/<bench>.json (the current one for this kind of machine), then
// rewrites docs/benchmarks.md from all of them.
//   node dist-dev/bench/run.js [bench ...] [--threads N] [--quick] [--out <dir>]
//   --quick: a few steps of each, to see that they run; results go to a temporary folder (or
//            --out) and docs/benchmarks.md is left alone
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine, machineDir } from './results.js';
import { DOC_FILE, RESULTS_DIR, writeReport } from './report.js';

const HERE = dirname(fileURLToPath(import.meta.url));

// Each bench and the arguments of its --quick run.
const BENCHES: Record<string, string[]> = {
  engine_step: ['--steps', '3', '--batch', '8'],
  model_forward: ['--steps', '1', '--models', 'resnet18'],
  inference: ['--steps', '1', '--models', 'resnet18', '--size', '64'],
  data_augment: ['--rounds', '1', '--batch', '16'],
  efficientnet_scaling: ['--phi', '1'],
  train_throughput: ['--cases', 'airbench_m', '--images', '1024', '--epochs', '1', '--modes', 'fp32'],
  distributed: ['--quick'],
  profile_ops: ['--cases', 'resnet20', '--steps', '1', '--top', '4'],
  recipe_ablation: ['--variants', 'default', '--seeds', '0', '--limit-train', '2048'],
  distill: ['--seeds', '0', '--epochs', '1', '--limit-train', '1024'],
  predict_memory: ['--images', '500'],
  serve: ['--quick'],
  quantize: ['--steps', '3', '--calib-size', '16', '--no-accuracy'],
  // long (hours on 2 cores): trains 13 models; its runs resume if interrupted
  scaling: ['--quick'],
  // trains the baselines, then prunes and fine-tunes each (model, criterion, target): long
  prune: ['--quick'],
};
// Hours long: run only when named (npm run bench recipe_ablation).
const ON_REQUEST = new Set(['recipe_ablation', 'distill']);

const USAGE = `usage: node dist-dev/bench/run.js [${Object.keys(BENCHES).join('|')} ...] [--threads N] [--quick] [--out <dir>]`;

function fail(message: string): never {
  console.error(`bench/run: ${message}\n${USAGE}`);
  process.exit(2);
}

function options(): { names: string[]; threads?: string; quick: boolean; out?: string } {
  let parsed;
  try {
    parsed = parseArgs({
      options: { threads: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true, strict: true,
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const unknown = positionals.filter((n) => !(n in BENCHES));
  if (unknown.length) fail(`unknown benchmark ${unknown.join(', ')}: expected ${Object.keys(BENCHES).join(', ')}`);
  if (v.threads !== undefined && !/^[1-9]\d{0,3}$/.test(v.threads)) fail(`--threads must be an integer from 1 to 9999, got '${v.threads}'`);
  return { names: positionals.length ? positionals : Object.keys(BENCHES).filter((n) => !ON_REQUEST.has(n)), threads: v.threads, quick: v.quick === true, out: v.out };
}

const o = options();
const out = resolve(o.out ?? (o.quick ? mkdtempSync(join(tmpdir(), 'convkit-bench-')) : RESULTS_DIR));
const dir = join(out, machineDir(machine().kind));
const failed: string[] = [];
for (const name of o.names) {
  const file = join(dir, `${name}.json`);
  const args = [...(o.quick ? BENCHES[name] : []), ...(o.threads ? ['--threads', o.threads] : []), '--json', file];
  console.log(`\n== ${name} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(HERE, `${name}.js`), ...args], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${name} (${r.signal ?? `exit ${r.status}`})`);
}
console.log(`\nresults in ${dir}`);
if (!o.quick && o.out === undefined) console.log(`${DOC_FILE}: ${writeReport()} results`);
if (failed.length) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
