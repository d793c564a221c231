// JSON as the files convkit reads and writes hold it: the one JsonValue type of the code base, and
// a parse that refuses deep nesting. JSON.parse itself copes with any depth, but whatever walks the
// result recursively afterwards (structuredClone, JSON.stringify, a validator) overflows the stack
// on a hostile header of 100,000 nested arrays; the depth is checked first, without recursion.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The deepest nesting of arrays and objects in JSON text (strings skipped); stops once past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * JSON.parse, refusing text nested deeper than maxDepth with an Error that says so. Syntax errors
 * are JSON.parse's own SyntaxError.
 */
export function parseJson(text: string, maxDepth: number): unknown {
  if (jsonDepth(text, maxDepth) > maxDepth) throw new Error(`JSON nested deeper than the limit of ${maxDepth} levels`);
  return JSON.parse(text) as unknown;
}
