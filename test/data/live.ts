// A leak detector for tests: the addon's handle table counts the tensors made and disposed, so
// a test can assert that a piece of code leaves no live tensors behind.
import { tensorCounts } from '../../src/engine/index.js';

/** A function giving the number of tensors made and not disposed so far (compare two readings). */
export function liveTensors(): () => number {
  return () => {
    const c = tensorCounts();
    return c.created - c.disposed;
  };
}
