// Number helpers that reproduce Python's arithmetic where PyTorch's results depend on it.

/**
 * Python 3's round(): halves go to the even neighbour, so round(2.5) is 2. torchvision rounds
 * hidden widths and crop offsets so; Math.round would be off by one at every half.
 */
export function pythonRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
