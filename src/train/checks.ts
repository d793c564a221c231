// Checking JSON that comes from outside (recipe files, a checkpoint's training state): small
// composable checks that return null when a value fits, or what was expected when it does not,
// so that errors can name the field, the expectation and what was found.

/** null when `v` fits, else what was expected ('an integer in 1..1024'). */
export type Check = (v: unknown) => string | null;
/** The fields of an object and their checks; a nested Spec is a nested object. */
export interface Spec {
  [field: string]: Check | Spec;
}

export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const num = (lo: number, hi = Infinity, loOpen = false): Check => (v) =>
  isNum(v) && (loOpen ? v > lo : v >= lo) && v <= hi ? null : `a number ${loOpen ? '>' : '>='} ${lo}${hi < Infinity ? ` and <= ${hi}` : ''}`;
export const finite: Check = (v) => (isNum(v) ? null : 'a finite number');
export const int = (lo: number, hi = Number.MAX_SAFE_INTEGER): Check => (v) =>
  (Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi ? null : hi < Number.MAX_SAFE_INTEGER ? `an integer in ${lo}..${hi}` : `an integer >= ${lo}`);
export const orNull = (c: Check): Check => (v) => (v === null ? null : ((r) => (r ? `${r} or null` : null))(c(v)));
export const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');
export const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? null : 'a non-empty string');
export const anyStr: Check = (v) => (typeof v === 'string' ? null : 'a string');
export const oneOf = (xs: readonly string[]): Check => (v) => (typeof v === 'string' && xs.includes(v) ? null : `one of ${xs.join(', ')}`);
export const obj: Check = (v) => (isObject(v) ? null : 'an object');
export const pairOf = (c: Check, what: string): Check => (v) => (Array.isArray(v) && v.length === 2 && v.every((x) => c(x) === null) ? null : what);
export const numList: Check = (v) => (Array.isArray(v) && v.length > 0 && v.every(isNum) ? null : 'a non-empty list of numbers');

/** A list whose every element passes `c`; the message names the first element that does not. */
export const listOf = (c: Check, what: string): Check => (v) => {
  if (!Array.isArray(v)) return what;
  for (let i = 0; i < v.length; i++) {
    const r = c(v[i]);
    if (r) return `${what} (element ${i} must be ${r}, found ${describeValue(v[i])})`;
  }
  return null;
};

/** An object that fits `spec`, as one Check (for nullable or listed objects). */
export const fieldsOf = (spec: Spec): Check => (v) => {
  const p = firstProblem(v, spec);
  return p && (p.field === '' ? p.expected : `an object whose "${p.field}" is ${p.expected} (found ${describeValue(p.found)})`);
};

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface Problem {
  /** 'loader.batchSize'; '' for the value itself */
  field: string;
  expected: string;
  found: unknown;
}

/** The first field of `v` that does not fit `spec`, or null. */
export function firstProblem(v: unknown, spec: Spec, at = ''): Problem | null {
  if (!isObject(v)) return { field: at, expected: 'an object', found: v };
  for (const [key, c] of Object.entries(spec)) {
    const field = at ? `${at}.${key}` : key;
    const x = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
    if (typeof c === 'function') {
      const expected = c(x);
      if (expected) return { field, expected, found: x };
    } else {
      const p = firstProblem(x, c, field);
      if (p) return p;
    }
  }
  return null;
}

/** A value for a message, at most about 80 characters. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
