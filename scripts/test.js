// Runs the compiled test files (dist-dev/test, from tsconfig.dev.json) with Node's test runner:
// all of them, or those whose path contains one of the arguments. Files run one at a time: each
// already uses both cores through libtorch's threads.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const filter = process.argv.slice(2);
if (!existsSync('dist-dev/test')) {
  console.error('scripts/test.js: no compiled tests in dist-dev/test: build them with `npm run build:dev` (npm test builds and runs all)');
  process.exit(2);
}
const files = find('dist-dev/test').filter((f) => filter.length === 0 || filter.some((s) => f.includes(s))).sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
