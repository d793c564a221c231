// The benchmarks' command-line options, read straight from process.argv. No engine here:
// bench/preload.ts reads them before libtorch loads. A malformed option stops the benchmark at
// once, before it spends minutes timing what comes first.

/** Stops the benchmark with a one-line message (exit 2, as the CLI does for a bad argument). */
function badArg(message: string): never {
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

/** A comma-separated list option: --models a,b. */
export function listArg(name: string): string[] | undefined {
  return stringArg(name)?.split(',');
}
