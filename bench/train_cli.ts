// One whole `convkit train` command, as a user runs it, for the benchmarks that compare recipes:
// its final test top-1 (as training prints it), wall time and peak memory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO, 'bin/convkit.js');

/** acc: the final test top-1 as training prints it, the EMA's where the recipe keeps one (the weights a user of --ema evaluates) */
export interface TrainRun { acc: number; seconds: number; peakMB: number }

/** keep: a folder to leave the run in (default: a temporary one, removed) */
export function trainOnce(flags: string[], seed: number, keep?: string): TrainRun {
  const out = keep ?? mkdtempSync(join(tmpdir(), 'convkit-train-'));
  try {
    const t0 = performance.now();
    // GNU time's %M: the child's peak RSS in KB
    const r = spawnSync('/usr/bin/time', ['-f', 'peak-kb %M', process.execPath, CLI, 'train', '--quiet', '--json', '--seed', String(seed),
      '--out-dir', out, '--overwrite', ...flags], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const seconds = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`convkit train ${flags.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
    const result = JSON.parse(r.stdout) as { last: { valAcc: number; emaAcc: number | null } };
    const peak = /peak-kb (\d+)/.exec(r.stderr);
    return { acc: result.last.emaAcc ?? result.last.valAcc, seconds, peakMB: peak ? Number(peak[1]) / 1024 : NaN };
  } finally {
    if (!keep) rmSync(out, { recursive: true, force: true });
  }
}

/**
 * The default recipe's run (airbench_m on Fashion-MNIST, seed 0), the trained model the
 * compression and serving benchmarks start from: runs/bench-default, trained first when it holds
 * no model.safetensors (about 5 minutes on 2 cores).
 */
export const DEFAULT_RUN = join(REPO, 'runs', 'bench-default');

export function defaultRun(): string {
  const dir = DEFAULT_RUN;
  if (!existsSync(join(dir, 'model.safetensors'))) {
    console.error(`training the default recipe into ${dir} (once; later benchmarks reuse it)`);
    trainOnce([], 0, dir);
  }
  return dir;
}
