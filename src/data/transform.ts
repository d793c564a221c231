// What a batch transform is, and the option checking every transform shares.
//
// A transform is an object with a name and JSON options (so a recipe can describe a pipeline and
// `transformFromSpec` can rebuild it) and an `apply(batch, training)` that works on the whole
// batch with libtorch ops. Random transforms draw their per-sample parameters from libtorch's
// CPU generator (see rng.ts); in evaluation (training = false) they do nothing, or their
// deterministic counterpart (a random crop becomes a centre crop).
//
// Ownership: apply never disposes its input; it may return input tensors unchanged (the caller
// compares identity before disposing); every temporary it makes is freed before it returns.

import { dispose, tidy, type Tensor } from '../engine/index.js';
import type { Batch } from './dataset.js';
import type { JsonValue } from '../io/json.js';

export type TransformOptions = Record<string, JsonValue>;

/** A transform in a recipe: its name and its options, e.g. {"name": "randomCrop", "size": 28, "padding": 4}. */
export interface TransformSpec {
  name: string;
  [option: string]: JsonValue;
}

export type BatchTransform = (batch: Batch, training: boolean) => Batch;

export interface Transform {
  readonly name: string;
  /** Every option, defaults included, as JSON. */
  readonly options: Readonly<TransformOptions>;
  apply(batch: Batch, training: boolean): Batch;
  /** The spec that rebuilds this transform. */
  toJSON(): TransformSpec;
}

/** Makes a Transform whose apply runs in a tidy scope, so temporaries never leak. */
export function makeTransform(name: string, options: TransformOptions, apply: BatchTransform): Transform {
  const frozen = Object.freeze({ ...options });
  return {
    name,
    options: frozen,
    apply: (batch, training) => tidy(() => apply(batch, training)),
    toJSON: () => ({ ...frozen, name }),
  };
}

/** Disposes the tensors of `old` that neither `next` nor `protect` (e.g. the caller's input) holds. */
export function disposeReplaced(old: Batch, next: Batch, protect?: Batch): void {
  const keep = new Set<Tensor>([next.x, next.y]);
  if (protect !== undefined) keep.add(protect.x).add(protect.y);
  dispose([old.x, old.y].filter((t) => !keep.has(t)));
}

// ---------------------------------------------------------------------------------------------
// Option checking: every message names the transform, the option, what it expected and got.

export class OptionReader {
  readonly #seen = new Set<string>(['name']);
  constructor(readonly transform: string, readonly raw: Readonly<Record<string, unknown>>) {}

  #fail(key: string, expected: string): never {
    throw new TypeError(`${this.transform}: option '${key}' must be ${expected}, got ${JSON.stringify(this.raw[key])}`);
  }

  #get(key: string): unknown {
    this.#seen.add(key);
    return this.raw[key];
  }

  /** The raw value (marked as known), for options with several accepted forms. */
  value(key: string): unknown {
    return this.#get(key);
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  number(key: string, fallback?: number, range: { min?: number; max?: number; integer?: boolean } = {}): number {
    const v = this.#get(key) ?? fallback;
    const kind = range.integer ? 'an integer' : 'a number';
    const bounds = `${range.min !== undefined ? ` >= ${range.min}` : ''}${range.max !== undefined ? ` <= ${range.max}` : ''}`;
    if (v === undefined) this.#fail(key, `${kind}${bounds} (required)`);
    if (typeof v !== 'number' || !Number.isFinite(v) || (range.integer && !Number.isInteger(v)) ||
      (range.min !== undefined && v < range.min) || (range.max !== undefined && v > range.max)) {
      this.#fail(key, `${kind}${bounds}`);
    }
    return v;
  }

  probability(key: string, fallback: number): number {
    return this.number(key, fallback, { min: 0, max: 1 });
  }

  /** A positive integer or [height, width] of positive integers. */
  size(key: string, fallback?: number | [number, number]): [number, number] {
    const v = this.#get(key) ?? fallback;
    const ok = (d: unknown): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0;
    if (ok(v)) return [v, v];
    if (Array.isArray(v) && v.length === 2 && ok(v[0]) && ok(v[1])) return [v[0], v[1]];
    this.#fail(key, 'a positive integer or [height, width] of positive integers');
  }

  /** [lo, hi] with lo <= hi, each within the bounds. */
  range(key: string, fallback: [number, number], min = -Infinity, max = Infinity): [number, number] {
    const v = this.#get(key) ?? fallback;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((d) => typeof d === 'number' && d >= min && d <= max) || v[0] > v[1]) {
      this.#fail(key, `[low, high] with ${min} <= low <= high <= ${max}`);
    }
    return [v[0] as number, v[1] as number];
  }

  numbers(key: string, fallback?: number[]): number[] {
    const v = this.#get(key) ?? fallback;
    if (!Array.isArray(v) || v.length === 0 || !v.every((d) => typeof d === 'number' && Number.isFinite(d))) {
      this.#fail(key, 'a non-empty array of numbers');
    }
    return v as number[];
  }

  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const v = this.#get(key) ?? fallback;
    if (!choices.includes(v as T)) this.#fail(key, `one of ${choices.map((c) => `'${c}'`).join(', ')}`);
    return v as T;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.#get(key) ?? fallback;
    if (typeof v !== 'boolean') this.#fail(key, 'true or false');
    return v;
  }

  /** Throws on options the transform does not know: a typo in a recipe must not pass silently. */
  done(): void {
    const unknown = Object.keys(this.raw).filter((k) => !this.#seen.has(k) && this.raw[k] !== undefined);
    if (unknown.length > 0) {
      throw new TypeError(`${this.transform}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; ` +
        `known options: ${[...this.#seen].filter((k) => k !== 'name').join(', ')}`);
    }
  }
}

/** Reads a transform's options with `read`, rejecting unknown keys. */
export function readOptions<T>(transform: string, raw: object | undefined, read: (r: OptionReader) => T): T {
  const reader = new OptionReader(transform, (raw ?? {}) as Record<string, unknown>);
  const result = read(reader);
  reader.done();
  return result;
}
