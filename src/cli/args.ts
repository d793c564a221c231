// Argument parsing shared by the commands: node:util parseArgs, strict, with errors turned into
// UsageError (exit code 2) that name the option, the value and what was expected.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line usage: the message is printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** parseArgs with strict checking; unknown options and missing values become UsageErrors. */
export function parse(command: string, args: string[], options: OptionSpec, o: { minPositionals?: number; maxPositionals?: number } = {}): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, ...options }, strict: true, allowPositionals: true }) as Parsed;
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '');
    throw new UsageError(msg, command);
  }
  if (parsed.values.help) return parsed;
  const n = parsed.positionals.length;
  if (o.minPositionals !== undefined && n < o.minPositionals) {
    throw new UsageError(`expected ${o.minPositionals}${o.maxPositionals !== o.minPositionals ? ' or more' : ''} argument${o.minPositionals > 1 ? 's' : ''}, got ${n}`, command);
  }
  if (o.maxPositionals !== undefined && n > o.maxPositionals) {
    throw new UsageError(`unexpected argument${n - o.maxPositionals > 1 ? 's' : ''}: ${parsed.positionals.slice(o.maxPositionals).join(' ')}`, command);
  }
  return parsed;
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function intOpt(p: Parsed, name: string, command: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `in ${min}..${max}` : `>= ${min}`}, got '${v.slice(0, 40)}'`, command);
  }
  return n;
}

export function numOpt(p: Parsed, name: string, command: string, min = -Infinity, max = Infinity): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` and <= ${max}` : ''}, got '${v}'`, command);
  }
  return n;
}

/** 'true'/'false'/'on'/'off'/'auto' for tri-state options. */
export function autoBoolOpt(p: Parsed, name: string, command: string): boolean | 'auto' | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (s === 'auto') return 'auto';
  if (['true', 'on', 'yes', '1'].includes(s)) return true;
  if (['false', 'off', 'no', '0'].includes(s)) return false;
  throw new UsageError(`--${name} must be on, off or auto, got '${v}'`, command);
}

/** 'C,H,W' or 'H,W' or 'N' -> numbers */
export function shapeOpt(p: Parsed, name: string, command: string, lengths: number[], max = Number.MAX_SAFE_INTEGER): number[] | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const parts = v.split(/[,x]/).map((s) => s.trim());
  const nums = parts.map(Number);
  if (!lengths.includes(parts.length) || !nums.every((n) => Number.isInteger(n) && n > 0 && n <= max)) {
    const range = max < Number.MAX_SAFE_INTEGER ? `integers in 1..${max}` : 'positive integers';
    throw new UsageError(`--${name} must be ${lengths.map((l) => (l === 3 ? 'C,H,W' : l === 2 ? 'H,W' : 'N')).join(' or ')} of ${range}, got '${v.slice(0, 40)}'`, command);
  }
  return nums;
}
