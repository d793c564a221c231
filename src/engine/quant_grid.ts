// The uint8 grid of an activation range, shared by quantization-aware training (fake_quant.ts)
// and post-training quantization (compress), so both round onto the same grid. Plain numbers:
// importing it loads no addon.

/** uint8 parameters of a range: scale (hi - lo) / 255 over the range widened to hold 0, the zero point where 0 lands. */
export function uint8Params(lo: number, hi: number): { scale: number; zeroPoint: number } {
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const scale = Math.fround((hi - lo) / 255);
  // an all-zero tensor: any scale represents it; 1 keeps the arithmetic finite
  if (!(scale > 0)) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}
