// Issue 15's distillation goal: a small student trained with a teacher against the same recipe
// without one, over several seeds, each a whole `convkit train` command on Fashion-MNIST.
//   node dist-dev/bench/distill.js [--teacher file] [--student airbench_s] [--student-widths 16,32,64] [--epochs 6] [--seeds 0,1,2]
//                                  [--alpha 0.5] [--temperature 4] [--limit-train N] [--json out.json]
// Without --teacher: the default recipe's run (runs/bench-default, trained first when missing).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, emit, listArg } from './common.js';
import { stringArg } from './args.js';
import { defaultRun, trainOnce, type TrainRun } from './train_cli.js';

const student = stringArg('student') ?? 'airbench_s';
// a narrower airbench student (its three groups' widths): a larger gap to the teacher
const widths = listArg('student-widths')?.map(Number);
const studentName = widths ? `${student} at widths ${widths.join('/')}` : student;
const epochs = arg('epochs', 6);
const alpha = arg('alpha', 0.5);
const temperature = arg('temperature', 4);
const limit = arg('limit-train', 0);
const seeds = (listArg('seeds') ?? ['0', '1', '2']).map(Number);
const limitFlags = limit ? ['--limit-train', String(limit)] : [];

const tmp = mkdtempSync(join(tmpdir(), 'convkit-distill-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// --limit-train (a quick check) trains its own small teacher; otherwise the default recipe's run
let teacher = stringArg('teacher');
let teacherAcc = NaN;
if (!teacher && limit) {
  const dir = join(tmp, 'teacher');
  const r = trainOnce(limitFlags, 0, dir);
  teacher = join(dir, 'model.safetensors');
  teacherAcc = r.acc;
  console.error(`teacher (default recipe, airbench_m): ${(100 * r.acc).toFixed(2)}% in ${r.seconds.toFixed(0)} s`);
}
teacher ??= join(defaultRun(), 'model.safetensors');

const recipe = ['--model', student, '--epochs', String(epochs), ...limitFlags, ...(widths ? ['--set', `modelOptions=${JSON.stringify({ widths })}`] : [])];
const withTeacher = [...recipe, '--teacher', teacher, '--distill-alpha', String(alpha), '--temperature', String(temperature)];
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const runs: Record<'plain' | 'distilled', TrainRun[]> = { plain: [], distilled: [] };
for (const seed of seeds) {
  for (const [kind, flags] of [['plain', recipe], ['distilled', withTeacher]] as const) {
    const r = trainOnce(flags, seed);
    runs[kind].push(r);
    console.error(`${studentName} ${kind} seed ${seed}: ${(100 * r.acc).toFixed(2)}% in ${r.seconds.toFixed(0)} s`);
  }
}
const row = (kind: 'plain' | 'distilled', what: string): (string | number)[] => [
  what, runs[kind].map((r) => (100 * r.acc).toFixed(2)).join(' / '), 100 * mean(runs[kind].map((r) => r.acc)),
  mean(runs[kind].map((r) => r.seconds)), Math.max(...runs[kind].map((r) => r.peakMB)),
];
const gain = 100 * (mean(runs.distilled.map((r) => r.acc)) - mean(runs.plain.map((r) => r.acc)));
emit('distill', [{
  title: `Distillation on Fashion-MNIST${limit ? ` (${limit} training images)` : ''}: student ${studentName}, ${epochs} epochs, seeds ${seeds.join(', ')}; ` +
    `teacher ${Number.isNaN(teacherAcc) ? teacher : `airbench_m (default recipe, ${(100 * teacherAcc).toFixed(2)}%)`}, alpha ${alpha}, T ${temperature}. ` +
    `Gain of the mean: ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} points (goal +0.3)`,
  headers: ['recipe', 'top-1 per seed (%)', 'mean top-1 (%)', 'mean wall (s)', 'peak RSS (MB)'],
  rows: [row('plain', `${studentName}, no teacher`), row('distilled', `${studentName} + teacher`)],
}]);
