// The addon's typed surface (src/engine/native_api.ts) lists exactly the functions the addon
// exports: a function added on one side only fails here, not at a user's call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { native } from '../../src/engine/native.js';

test('native_api.ts and the addon list the same functions', () => {
  const source = readFileSync(fileURLToPath(new URL('../../../src/engine/native_api.ts', import.meta.url)), 'utf8');
  const body = source.slice(source.indexOf('export interface Native {'));
  const typed = new Set([...body.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]));
  const exported = new Set(Object.keys(native));
  assert.ok(typed.size > 200, `found ${typed.size} typed functions`);
  assert.deepEqual([...exported].filter((k) => !typed.has(k)), [], 'exported by the addon, missing from native_api.ts');
  assert.deepEqual([...typed].filter((k) => !exported.has(k)), [], 'typed in native_api.ts, not exported by the addon');
  for (const k of exported) assert.equal(typeof (native as unknown as Record<string, unknown>)[k], 'function', k);
});
