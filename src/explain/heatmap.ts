// Heat maps as pictures: a map normalised to [0, 1], coloured with the jet colour map (what
// Grad-CAM's authors and most tools show, so maps compare at a glance), and blended over the image.

/** Min-max normalisation to [0, 1]; a constant map becomes all zeros. */
export function normalizeMap(map: Float32Array): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Float32Array(map.length);
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return out;
  for (let i = 0; i < map.length; i++) out[i] = (map[i] - lo) / span;
  return out;
}

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

/** The jet colour map at t in [0, 1]: blue, cyan, yellow, red. */
export function jet(t: number): [number, number, number] {
  const u = clamp01(t);
  return [clamp01(1.5 - Math.abs(4 * u - 3)), clamp01(1.5 - Math.abs(4 * u - 2)), clamp01(1.5 - Math.abs(4 * u - 1))];
}

/** A [0, 1] map as a CHW uint8 RGB image in the jet colour map. */
export function colorize(map01: Float32Array): Uint8Array {
  const n = map01.length;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = jet(map01[i]);
    out[i] = Math.round(255 * r);
    out[n + i] = Math.round(255 * g);
    out[2 * n + i] = Math.round(255 * b);
  }
  return out;
}

/** A [0, 1] map as a CHW uint8 gray image. */
export function grayscale(map01: Float32Array): Uint8Array {
  return Uint8Array.from(map01, (v) => Math.round(255 * clamp01(v)));
}

/**
 * The coloured map over the image: (1 - alpha) image + alpha colour, per pixel. image is CHW
 * uint8 with 1 or 3 channels (gray is shown as RGB); the result is CHW RGB.
 */
export function overlay(image: Uint8Array, channels: number, map01: Float32Array, alpha = 0.5): Uint8Array {
  const n = map01.length;
  if (channels !== 1 && channels !== 3) throw new RangeError(`overlay: the image must have 1 or 3 channels, got ${channels}`);
  if (image.length !== channels * n) throw new RangeError(`overlay: the image has ${image.length} bytes, expected ${channels} x ${n} for the map's size`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`overlay: alpha must be in [0, 1], got ${alpha}`);
  const colour = colorize(map01);
  const out = new Uint8Array(3 * n);
  for (let k = 0; k < 3; k++) {
    const src = channels === 1 ? 0 : k * n;
    for (let i = 0; i < n; i++) out[k * n + i] = Math.round((1 - alpha) * image[src + i] + alpha * colour[k * n + i]);
  }
  return out;
}
