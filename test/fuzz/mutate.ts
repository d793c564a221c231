// Seeded mutations of a valid file for the fuzz tests: truncations at many points, bit flips,
// byte changes, words overwritten with huge values (declared sizes, counts, offsets), appended junk.

import { prng } from '../helpers/prng.js';

export interface Mutant {
  /** what was done, to reproduce a failure: 'flip 3 bits (seed 7, case 12)' */
  label: string;
  bytes: Uint8Array;
}

const HUGE_WORDS: readonly number[][] = [
  [0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0x7f],
  [0x00, 0x00, 0x00, 0x80],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
];

/** About `perKind` mutants of each kind, plus truncations at up to 32 points. */
export function mutants(seed: Uint8Array, seedNumber: number, perKind: number): Mutant[] {
  const rand = prng(seedNumber);
  const at = (): number => Math.floor(rand() * seed.length);
  const out: Mutant[] = [];
  const cuts = new Set([0, 1, 2, 3, 4, 7, 8, 12, 16, seed.length - 1]);
  for (let k = 1; k < 22; k++) cuts.add(Math.floor((k * seed.length) / 22));
  for (const n of [...cuts].filter((n) => n >= 0 && n < seed.length).sort((a, b) => a - b)) {
    out.push({ label: `truncated to ${n} bytes`, bytes: seed.slice(0, n) });
  }
  for (let c = 0; c < perKind; c++) {
    const b = seed.slice();
    const n = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < n; j++) b[at()] ^= 1 << Math.floor(rand() * 8);
    out.push({ label: `${n} bit flips (seed ${seedNumber}, case ${c})`, bytes: b });
  }
  for (let c = 0; c < perKind; c++) {
    const b = seed.slice();
    const n = 1 + Math.floor(rand() * 4);
    for (let j = 0; j < n; j++) b[at()] = [0x00, 0xff, Math.floor(rand() * 256)][Math.floor(rand() * 3)]!;
    out.push({ label: `${n} bytes changed (seed ${seedNumber}, case ${c})`, bytes: b });
  }
  for (let c = 0; c < perKind; c++) {
    const b = seed.slice();
    const word = HUGE_WORDS[Math.floor(rand() * HUGE_WORDS.length)]!;
    const p = Math.min(at() & ~3, Math.max(0, seed.length - word.length));
    b.set(word.slice(0, seed.length - p), p);
    out.push({ label: `huge word at ${p} (seed ${seedNumber}, case ${c})`, bytes: b });
  }
  const junk = new Uint8Array(seed.length + 64);
  junk.set(seed);
  for (let i = seed.length; i < junk.length; i++) junk[i] = Math.floor(rand() * 256);
  out.push({ label: '64 junk bytes appended', bytes: junk });
  return out;
}
