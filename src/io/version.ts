// convkit's version (the CLI's --version, the ONNX producer_version, the models cache's name).
// The package finds its own package.json by name, from dist/ or dist-dev/ alike.
import { createRequire } from 'node:module';

export function packageVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('convkit/package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0';
  } catch {
    return '0';
  }
}
