// The checks every family makes of its input and options before any kernel runs, with one
// wording: the model's name, what it expected and what it found.
import type { Tensor } from '../engine/index.js';

/** An image batch [N, inChannels, H, W] with H, W >= minSize (below it the stages run out of pixels). */
export function checkImageInput(model: string, x: Tensor, inChannels: number, minSize: number): void {
  const s = x.shape;
  if (s.length !== 4 || s[1] !== inChannels || s[2] < minSize || s[3] < minSize) {
    throw new Error(`${model}: expected an input of shape [N, ${inChannels}, H, W] with H, W >= ${minSize}, found [${s.join(', ')}]`);
  }
}

/** A dropout probability before a classifier: [0, 1). */
export function checkDropRate(model: string, p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`${model}: dropRate must be in [0, 1), got ${p}`);
  return p;
}
