// The benchmarks' command-line options, read straight from process.argv. No engine here:
// bench/preload.ts reads them before libtorch loads.

/** A string option: --name value. */
export function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A number option: --name 10. */
export function arg(name: string, fallback: number): number {
  const v = stringArg(name);
  return v === undefined ? fallback : Number(v);
}

/** A comma-separated list option: --models a,b. */
export function listArg(name: string): string[] | undefined {
  return stringArg(name)?.split(',');
}
