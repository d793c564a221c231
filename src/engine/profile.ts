// Op-level profiling: libtorch's own profiler records every op a piece of code runs, forward
// and backward, with its wall time, as torch.autograd.profiler.profile() does in Python.
import { native } from './native.js';

/**
 * Runs fn and writes a Chrome trace of the libtorch ops it ran to `tracePath` (open it in
 * Perfetto or chrome://tracing; each op is an event with its duration). One profile at a time.
 */
export async function profile<T>(tracePath: string, fn: () => T | Promise<T>): Promise<T> {
  native.startProfile(tracePath);
  try {
    return await fn();
  } finally {
    native.stopProfile();
  }
}
