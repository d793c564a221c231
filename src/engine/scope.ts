// Deterministic freeing of native memory: every tensor made inside tidy() is disposed when it
// returns, except the tensors it returns and those marked with keep().
import type { Tensor } from './tensor.js';

const scopes: Tensor[][] = [];

// scopes[scopes.length - 1] on an empty array reads the property '-1', a slow generic lookup
// that cost a tensor made outside tidy() more than the rest of its bookkeeping.
const innermost = (): Tensor[] | undefined => (scopes.length > 0 ? scopes[scopes.length - 1] : undefined);

/** Called by every new Tensor. */
export function track(t: Tensor): void {
  innermost()?.push(t);
}

function collect(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) { out.add(value); return; }
  if (Array.isArray(value)) { for (const v of value) collect(v, out, seen); return; }
  if (value instanceof Map) { for (const v of value.values()) collect(v, out, seen); return; }
  if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

let isTensor: (v: unknown) => v is Tensor = (_v): _v is Tensor => false;
export function setTensorCheck(check: (v: unknown) => v is Tensor): void { isTensor = check; }

/**
 * Runs fn and frees every tensor it created except what it returns (tensors found in the
 * returned value, arrays, maps and plain objects) and kept tensors. Returned tensors move to
 * the enclosing scope. fn must be synchronous: a step of a training loop, not the loop.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push([]);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    for (const t of scopes.pop()!) if (!t.kept) t.dispose();
    throw err;
  }
  const made = scopes.pop()!;
  if (result instanceof Promise) {
    for (const t of made) if (!t.kept) t.dispose();
    throw new TypeError('tidy(fn): fn returned a Promise; tidy needs a synchronous function (tidy each step, not the async loop)');
  }
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  const parent = innermost();
  for (const t of made) {
    if (t.kept) continue;
    if (keepers.has(t)) parent?.push(t);
    else t.dispose();
  }
  return result;
}

/** Disposes every tensor found in value (tensors, arrays, maps, plain objects). */
export function dispose(value: unknown): void {
  const found = new Set<Tensor>();
  collect(value, found);
  for (const t of found) t.dispose();
}

export const scopeDepth = (): number => scopes.length;
