// The benchmarks' command-line options, read straight from process.argv. No engine here:
// bench/preload.ts reads them before libtorch loads. A malformed option stops the benchmark at
// once, before it spends minutes timing what comes first.

/** Stops the benchmark with a one-line message (exit 2, as the CLI does for a bad argument). */
export function badArg(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

/** A string option: --name value. */
export function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) badArg(`--${name} needs a value`);
  return v;
}

/** A number option: --name 10. */
export function arg(name: string, fallback: number): number {
  const v = stringArg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) badArg(`--${name} must be a number, got '${v}'`);
  return n;
}

/** An option with a fixed set of values: --name one-of-allowed. */
export function choiceArg<T extends string>(name: string, allowed: readonly T[]): T | undefined {
  const v = stringArg(name);
  if (v !== undefined && !(allowed as readonly string[]).includes(v)) badArg(`--${name}: expected ${allowed.join(', ')}, got '${v.slice(0, 40)}'`);
  return v as T | undefined;
}

/** A comma-separated list option: --models a,b. */
export function listArg(name: string): string[] | undefined {
  return stringArg(name)?.split(',');
}

/** A comma-separated list whose entries come from a fixed set: --cases resnet18,airbench_m. */
export function listChoiceArg<T extends string>(name: string, allowed: readonly T[]): T[] | undefined {
  const v = listArg(name);
  const bad = v?.find((x) => !(allowed as readonly string[]).includes(x));
  if (bad !== undefined) badArg(`--${name}: unknown '${bad.slice(0, 40)}' (expected ${allowed.join(', ')})`);
  return v as T[] | undefined;
}
