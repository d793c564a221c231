// Which module's forward is running: tracing records it with each op (ONNX node names, which
// layer issued a pad for pruning).
import type { Module } from './module.js';

type AnyModule = Module<never[], unknown>;

/**
 * Runs `fn` with every module of `model` wrapped so that `current()` returns the path of the
 * innermost module whose forward is running ('' at the top); the forwards are restored after.
 */
export function withModulePaths<T>(model: AnyModule, fn: (current: () => string) => T): T {
  const path: string[] = [];
  const restore: (() => void)[] = [];
  try {
    for (const [name, m] of model.namedModules()) {
      const own = Object.prototype.hasOwnProperty.call(m, 'forward');
      const original = m.forward;
      const scoped = function (this: unknown, ...args: unknown[]): unknown {
        path.push(name);
        try {
          return (original as (...a: unknown[]) => unknown).apply(m, args);
        } finally {
          path.pop();
        }
      };
      Object.defineProperty(m, 'forward', { value: scoped, configurable: true, writable: true, enumerable: false });
      restore.push(() => {
        if (own) Object.defineProperty(m, 'forward', { value: original, configurable: true, writable: true, enumerable: false });
        else delete (m as { forward?: unknown }).forward;
      });
    }
    return fn(() => path[path.length - 1] ?? '');
  } finally {
    for (const r of restore) r();
  }
}
