// Which class an explanation is for: the model's prediction, or one the caller names.
import type { Tensor } from '../engine/index.js';
import { ExplainError } from './target.js';

/** One class per image: the argmax of its logits, or `wanted` (one for all, or one per image), checked against the model's outputs. */
export function chooseClasses(logits: Tensor, wanted: number | readonly number[] | undefined): { classes: number[]; predicted: number[] } {
  const [n, k] = logits.shape;
  const predicted = (logits.argmax(1).toArray() as number[]);
  if (wanted === undefined) return { classes: predicted, predicted };
  const list = typeof wanted === 'number' ? Array<number>(n).fill(wanted) : [...wanted];
  if (list.length !== n) throw new ExplainError(`class: ${list.length} class indices given for ${n} images`);
  for (const c of list) {
    if (!(Number.isInteger(c) && c >= 0 && c < k)) {
      throw new ExplainError(`class ${c} is out of range: the model has ${k} classes (0..${k - 1})`);
    }
  }
  return { classes: list, predicted };
}
