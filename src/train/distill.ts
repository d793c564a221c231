// Knowledge distillation (Hinton, Vinyals & Dean 2015): the student is also trained to match the
// teacher's class distribution softened at temperature T, on the very batch it sees (augmented,
// mixed). The teacher runs in eval mode without autograd; its time per step is measured so the
// progress line can show what it costs.
import { F, noGrad, tensor, tidy, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { forward, logitsOf } from './evaluate.js';
import { openModelFile } from './eval_checkpoint.js';

/** What a teacher expects: its input and normalisation, so a batch of the student's can be adapted. */
export interface TeacherInput {
  channels: number;
  size: [number, number];
  /** null: the teacher takes the student's normalisation */
  mean: number[] | null;
  std: number[] | null;
}

export interface Teacher {
  /** the file it came from, for messages */
  readonly source: string;
  readonly input: TeacherInput;
  /** logits [N, classes] (float32, no autograd) of a batch already in the teacher's input form */
  logits(x: Tensor): Promise<Tensor>;
  dispose(): void;
}

/**
 * T² · KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the batch. The T² keeps
 * the soft term's gradients on the scale of the hard term's as T changes (Hinton et al., §2).
 */
export function distillationLoss(student: Tensor, teacher: Tensor, temperature: number): Tensor {
  if (!(temperature > 0)) throw new RangeError(`distillationLoss: the temperature must be > 0, got ${temperature}`);
  if (student.ndim !== 2 || teacher.ndim !== 2 || student.size(0) !== teacher.size(0) || student.size(1) !== teacher.size(1)) {
    throw new RangeError(`distillationLoss: student logits [${student.shape}] and teacher logits [${teacher.shape}] must both be [batch, classes] of one shape`);
  }
  return tidy(() => {
    const logP = F.logSoftmax(student.float().div(temperature), 1);
    const logQ = F.logSoftmax(teacher.float().div(temperature), 1);
    return F.klDiv(logP, logQ, 'batchmean', true).mul(temperature * temperature);
  });
}

/** The blend of the hard-label loss and the distillation term: (1 − α)·hard + α·soft. */
export function blendDistillation(hard: Tensor, soft: Tensor, alpha: number): Tensor {
  return hard.mul(1 - alpha).add(soft.mul(alpha));
}

const sameList = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-7);

/**
 * The student's batch (normalised with `from`) as the teacher wants it: renormalised with the
 * teacher's mean and std, resized to its input size (bilinear) and, for a gray batch and an RGB
 * teacher, repeated to three channels. Throws naming both sides when no such adaptation exists.
 */
export function adaptBatch(x: Tensor, from: { mean: number[]; std: number[] }, to: TeacherInput, source: string): Tensor {
  const c = x.size(1);
  if (c !== to.channels && !(c === 1 && to.channels === 3)) {
    throw new RangeError(`teacher ${source} takes ${to.channels}-channel images, the student's batches have ${c} channels`);
  }
  const col = (v: number[], n: number): Tensor => tensor(Float32Array.from(v.length === 1 ? Array<number>(n).fill(v[0]) : v), { shape: [1, n, 1, 1] });
  const renormalise = to.mean !== null && to.std !== null && (!sameList(from.mean, to.mean) || !sameList(from.std, to.std));
  return tidy(() => {
    let y = x.float();
    if (renormalise) y = y.mul(col(from.std, c)).add(col(from.mean, c));
    if (c !== to.channels) y = y.repeat([1, 3, 1, 1]);
    if (renormalise) y = y.sub(col(to.mean!, to.channels)).div(col(to.std!, to.channels));
    if (y.size(2) !== to.size[0] || y.size(3) !== to.size[1]) y = F.interpolate(y, to.size, { mode: 'bilinear' });
    return y;
  });
}

/** A convkit checkpoint (or model.safetensors) as a teacher, run by libtorch. */
export function checkpointTeacher(file: string, o: { bf16?: boolean; channelsLast?: boolean } = {}): Teacher {
  const opened = openModelFile(file);
  const model = opened.model;
  model.eval();
  if (o.channelsLast) model.to({ memoryFormat: 'channelsLast' });
  return {
    source: file,
    input: { channels: opened.channels, size: opened.size, mean: opened.mean, std: opened.std },
    logits: (x) => Promise.resolve(noGrad(() => tidy(() => logitsOf(forward(model, x, o)).float()))),
    dispose: () => (model as Module<never[], unknown>).dispose(),
  };
}
