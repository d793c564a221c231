// Values in error messages, of bounded length: a hostile file or a buggy caller can hand over a
// shape of 100,000 dimensions or an array of a million elements, and a message quoting it whole
// would be megabytes long.

const SHOWN_DIMS = 8;

/** '[2, 3, 4]', or '[1, 1, 1, 1, 1, 1, 1, 1, ... (100000 dims)]' for long shapes. */
export function formatShape(shape: ArrayLike<unknown>): string {
  const n = shape.length;
  const shown = Array.from({ length: Math.min(n, SHOWN_DIMS) }, (_, i) => formatElement(shape[i]));
  return n > SHOWN_DIMS ? `[${shown.join(', ')}, ... (${n} dims)]` : `[${shown.join(', ')}]`;
}

/** A short description of one value: numbers as they are, anything else by kind. */
export function formatElement(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `a ${typeof v}`;
}
