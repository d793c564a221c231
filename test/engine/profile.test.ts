// profile(): the Chrome trace of the ops a piece of code ran, forward and backward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { F, profile, randn, tidy } from '../../src/engine/index.js';

interface TraceEvent { name: string; ph: string; dur: number }

test('profile writes a Chrome trace with the forward and backward ops', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'trace.json');
  const value = await profile(path, () => tidy(() => {
    const w = randn([8, 3, 3, 3]).requiresGrad_(true);
    F.conv2d(randn([2, 3, 8, 8]), w).relu().sum().backward();
    return 42;
  }));
  assert.equal(value, 42);
  const events = JSON.parse(readFileSync(path, 'utf8')) as TraceEvent[];
  const names = new Set(events.map((e) => e.name));
  for (const op of ['aten::conv2d', 'aten::relu', 'aten::convolution_backward']) assert.ok(names.has(op), `${op} is missing from the trace`);
  assert.ok(events.every((e) => e.ph === 'X' && e.dur >= 0));
});

test('profile: a bad trace path and nested profiles are refused, and profiling can start again', async (t) => {
  await assert.rejects(profile('/nonexistent-dir/trace.json', () => 1), /profile: cannot write the trace file \/nonexistent-dir\/trace.json/);
  const dir = mkdtempSync(join(tmpdir(), 'convkit-profile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(profile(join(dir, 'a.json'), () => profile(join(dir, 'b.json'), () => 1)), /a profile is already being recorded/);
  // an error inside fn still ends the profile
  await assert.rejects(profile(join(dir, 'c.json'), () => { throw new Error('boom'); }), /boom/);
  assert.equal(await profile(join(dir, 'd.json'), () => 'ok'), 'ok');
});
