// convkit's version for the producer_version field (cli/common.ts has the same look-up; export
// cannot import cli).
import { createRequire } from 'node:module';

export function packageVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('convkit/package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0';
  } catch {
    return '0';
  }
}
