// The backstop for tensors nobody disposes: once V8 has collected a Tensor object, a
// FinalizationRegistry frees its slot in the addon's handle table. tidy() and dispose() are the
// mechanism: they free at once, even in a loop that never yields. The backstop only catches
// leaks, and only when the event loop turns (registry callbacks run as tasks).
//
// Registering an object costs ~0.5 us, about as much as a whole op on a small tensor, and most
// tensors are disposed by tidy() moments after they are made. So new tensors wait in a queue
// that is registered in batches (every 1,024 tensors, or at the next microtask), skipping the
// ones disposed by then. A registration that outlives its tensor's dispose() is harmless: the
// addon ignores ids that are no longer live.
import { native, type Handle } from './native.js';

interface Watched {
  readonly handle: Handle;
  readonly isDisposed: boolean;
}

const BATCH = 1024;
const registry = new FinalizationRegistry<Handle>((id) => native.collect(id));
let queue: Watched[] = [];
let scheduled = false;

/** Called for every new Tensor, and again when a tensor's handle changes (setData). */
export function watch(t: Watched): void {
  queue.push(t);
  if (queue.length >= BATCH) flush();
  else if (!scheduled) {
    scheduled = true;
    queueMicrotask(flush);
  }
}

function flush(): void {
  const batch = queue;
  queue = [];
  scheduled = false;
  for (const t of batch) if (!t.isDisposed) registry.register(t, t.handle);
}
