// A leak detector for tests: wraps the native addon's functions to count tensor handles made and
// disposed, so a test can assert that a piece of code leaves no live tensors behind.
import { native } from '../../src/engine/native.js';

let installed = false;
let live = 0;

/** Starts counting (once per process); returns a function giving the number of live handles. */
export function liveTensors(): () => number {
  if (!installed) {
    installed = true;
    const isTensor = native.isTensor!;
    const isDisposed = native.isDisposed!;
    const dispose = native.dispose!;
    for (const [name, fn] of Object.entries(native)) {
      if (typeof fn !== 'function' || ['isTensor', 'isDisposed', 'dispose', 'TensorHandle'].includes(name)) continue;
      native[name] = (...args: unknown[]) => {
        const result = fn(...args);
        for (const h of Array.isArray(result) ? result : [result]) {
          if (h !== null && typeof h === 'object' && isTensor(h)) live++;
        }
        return result;
      };
    }
    native.dispose = (h: unknown) => {
      if (!isDisposed(h)) live--;
      return dispose(h);
    };
  }
  return () => live;
}
