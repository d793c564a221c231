// Knowledge distillation: the loss against a hand computation (value and gradient), the batch
// adaptation to a teacher's input, and runs with a checkpoint teacher and an ONNX teacher on
// real Fashion-MNIST subsets, resumed included; a teacher of another class count fails first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tensor, zeros } from '../../src/engine/index.js';
import { Trainer, adaptBatch, blendDistillation, distillationLoss, RecipeError, type Recipe, type TrainerEvent } from '../../src/train/index.js';
import { exportOnnx } from '../../src/export/index.js';
import { onnxTeacher } from '../../src/deploy/index.js';
import { createModel } from '../../src/models/index.js';
import './tiny_model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-distill-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const BASE: Partial<Recipe> = {
  model: 'tiny_cnn', limitTrain: 640, limitTest: 200, batchSize: 64, lr: 0.1, warmupEpochs: 0, epochs: 1,
  bf16: false, channelsLast: false, threads: 1, reportImages: 0,
};

const softmax = (row: number[], t: number): number[] => {
  const m = Math.max(...row.map((v) => v / t));
  const e = row.map((v) => Math.exp(v / t - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

const S = [[2, -1, 0.5], [0.1, 0.2, 3]];
const Tl = [[1, 0, -1], [-2, 1, 2.5]];

test('distillationLoss is T^2 KL(softmax(t/T) || softmax(s/T)) over the batch, with the gradient T (p_s - p_t) / N', () => {
  const T = 2;
  let want = 0;
  for (let i = 0; i < S.length; i++) {
    const p = softmax(Tl[i], T);
    const q = softmax(S[i], T);
    want += p.reduce((a, pk, k) => a + pk * Math.log(pk / q[k]), 0);
  }
  want = (T * T * want) / S.length;
  const s = tensor(S).requiresGrad_(true);
  const loss = distillationLoss(s, tensor(Tl), T);
  assert.ok(Math.abs(loss.item() - want) < 1e-5, `${loss.item()} vs ${want}`);
  loss.backward();
  const g = s.grad!.toArray() as number[][];
  for (let i = 0; i < S.length; i++) {
    const ps = softmax(S[i], T);
    const pt = softmax(Tl[i], T);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(g[i][k] - (T * (ps[k] - pt[k])) / S.length) < 1e-6, `grad[${i}][${k}]`);
  }
  // the same logits: nothing to learn
  assert.ok(Math.abs(distillationLoss(tensor(S), tensor(S), 4).item()) < 1e-6);
  assert.throws(() => distillationLoss(tensor(S), tensor([[1, 2]]), 2), /one shape/);
  assert.throws(() => distillationLoss(tensor(S), tensor(Tl), 0), /temperature must be > 0/);
});

test('blendDistillation weighs the hard and soft terms by 1 - alpha and alpha', () => {
  const hard = tensor(2);
  const soft = tensor(6);
  assert.equal(blendDistillation(hard, soft, 0).item(), 2);
  assert.equal(blendDistillation(hard, soft, 1).item(), 6);
  assert.equal(blendDistillation(hard, soft, 0.25).item(), 3);
});

test('adaptBatch renormalises, repeats gray to RGB and resizes to what the teacher takes', () => {
  const x = tensor([[[[0.5, -1], [2, 0]]]]); // [1, 1, 2, 2], normalised with mean 0.3, std 0.2
  const from = { mean: [0.3], std: [0.2] };
  const same = adaptBatch(x, from, { channels: 1, size: [2, 2], mean: [0.3], std: [0.2] }, 't');
  assert.deepEqual(same.toArray(), x.toArray());
  const rgb = adaptBatch(x, from, { channels: 3, size: [2, 2], mean: [0.5, 0.4, 0.3], std: [0.1, 0.2, 0.4] }, 't');
  assert.deepEqual(rgb.shape, [1, 3, 2, 2]);
  const v = rgb.toArray() as number[][][][];
  // pixel value 0.5 * 0.2 + 0.3 = 0.4, then (0.4 - mean_c) / std_c
  assert.ok(Math.abs(v[0][0][0][0] - (0.4 - 0.5) / 0.1) < 1e-5);
  assert.ok(Math.abs(v[0][2][0][0] - (0.4 - 0.3) / 0.4) < 1e-5);
  const big = adaptBatch(x, from, { channels: 1, size: [4, 4], mean: null, std: null }, 't');
  assert.deepEqual(big.shape, [1, 1, 4, 4]);
  assert.throws(() => adaptBatch(zeros([1, 2, 2, 2]), from, { channels: 3, size: [2, 2], mean: null, std: null }, 'teacher.onnx'),
    /teacher teacher\.onnx takes 3-channel images, the student's batches have 2 channels/);
});

let teacherFile = '';
async function trainedTeacher(): Promise<string> {
  if (teacherFile) return teacherFile;
  const dir = path.join(tmp, 'teacher');
  const t = Trainer.create({ ...BASE, limitTrain: 1280, epochs: 2, outDir: dir });
  await t.run();
  t.dispose();
  teacherFile = path.join(dir, 'model.safetensors');
  return teacherFile;
}

test('a run with a checkpoint teacher learns, shows the teacher\'s time per step, records it and resumes with it', async () => {
  const teacher = await trainedTeacher();
  const dir = path.join(tmp, 'student');
  const t = Trainer.create({ ...BASE, epochs: 2, teacher, distillAlpha: 0.7, distillTemperature: 3, outDir: dir }, { stopAfter: (e, b) => e === 1 && b === 3 });
  const steps: Extract<TrainerEvent, { type: 'step' }>[] = [];
  t.on((e) => { if (e.type === 'step') steps.push(e); });
  const r = await t.run();
  t.dispose();
  assert.equal(r.interrupted, true);
  assert.ok(steps.every((s) => s.teacherMs !== null && s.teacherMs > 0), 'every step reports the teacher\'s milliseconds');
  const recipe = Trainer.recipeOf(dir);
  assert.equal(recipe.teacher, teacher);
  assert.equal(recipe.distillAlpha, 0.7);
  const resumed = Trainer.resume(dir);
  const r2 = await resumed.run();
  resumed.dispose();
  assert.equal(r2.epochs, 2);
  assert.ok(r2.last!.valAcc > 0.25, `the student learns: test accuracy ${r2.last!.valAcc} (chance 0.1)`);
});

test('distillation changes the gradient: alpha 1 with a teacher trains a different model than no teacher', async () => {
  const teacher = await trainedTeacher();
  const run = async (extra: Partial<Recipe>, name: string): Promise<number> => {
    const t = Trainer.create({ ...BASE, limitTrain: 256, ...extra, outDir: path.join(tmp, name) });
    const r = await t.run();
    t.dispose();
    return r.last!.trainLoss;
  };
  const plain = await run({}, 'plain');
  const distilled = await run({ teacher, distillAlpha: 1 }, 'distilled');
  assert.notEqual(plain, distilled);
});

test('an ONNX teacher runs on ONNX Runtime; a teacher of another class count fails before anything is written', async () => {
  const teacher = await trainedTeacher();
  const model = createModel('tiny_cnn', { numClasses: 10, inChannels: 1 });
  const { loadModelWeights } = await import('../../src/train/index.js');
  loadModelWeights(model, teacher);
  model.eval();
  const onnx = path.join(tmp, 'teacher.onnx');
  exportOnnx(model, zeros([1, 1, 28, 28]), { file: onnx, metadata: { inputSize: [1, 28, 28], mean: [0.2860], std: [0.3530] } });
  model.dispose();
  const dir = path.join(tmp, 'onnx-student');
  const t = Trainer.create({ ...BASE, limitTrain: 256, teacher: onnx, outDir: dir }, { teacher: await onnxTeacher(onnx) });
  const r = await t.run();
  t.dispose();
  assert.equal(r.epochs, 1);
  assert.throws(() => Trainer.create({ ...BASE, teacher: onnx, outDir: path.join(tmp, 'x') }), /ONNX model: pass it as TrainerOptions\.teacher/);

  const wide = createModel('tiny_cnn', { numClasses: 5, inChannels: 1 });
  const wideFile = path.join(tmp, 'wide.onnx');
  exportOnnx(wide, zeros([1, 1, 28, 28]), { file: wideFile, metadata: { inputSize: [1, 28, 28] } });
  wide.dispose();
  const bad = path.join(tmp, 'bad-student');
  const tb = Trainer.create({ ...BASE, teacher: wideFile, outDir: bad }, { teacher: await onnxTeacher(wideFile) });
  await assert.rejects(tb.run(), (e: Error) => e instanceof RecipeError && /wide\.onnx gives logits of shape \[1,5\], the student has 10 classes/.test(e.message));
  tb.dispose();
  assert.equal(fs.existsSync(bad), false, 'nothing written');
});

test('bad distillation settings are recipe errors naming the key', () => {
  assert.throws(() => Trainer.create({ ...BASE, distillAlpha: 1.5, outDir: path.join(tmp, 'y') }), /"distillAlpha" must be/);
  assert.throws(() => Trainer.create({ ...BASE, distillTemperature: 0, outDir: path.join(tmp, 'y') }), /"distillTemperature" must be/);
  assert.throws(() => Trainer.create({ ...BASE, teacher: path.join(tmp, 'missing.safetensors'), outDir: path.join(tmp, 'y') }), /missing\.safetensors/);
});

