// What the CPU can do, for choices that depend on it (bf16 autocast). Linux lists the
// instruction-set flags in /proc/cpuinfo; elsewhere the list is empty and every answer is no.
// (The addon's own kernels check for themselves: native/conv2d.cc, native/depthwise_wgrad.cc.)
import { readFileSync } from 'node:fs';

let flags: ReadonlySet<string> | undefined;

/** The CPU's feature flags as Linux names them ('avx2', 'avx512_bf16', 'amx_bf16', ...); read once. */
export function cpuFlags(): ReadonlySet<string> {
  if (flags) return flags;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: no flags known
  }
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(text);
  flags = new Set(line ? line[1].trim().split(/\s+/) : []);
  return flags;
}

/** Whether this CPU runs bfloat16 natively (AVX-512 BF16 or AMX): where bf16 autocast pays. */
export function cpuHasBf16(): boolean {
  const f = cpuFlags();
  return f.has('avx512_bf16') || f.has('amx_bf16');
}
