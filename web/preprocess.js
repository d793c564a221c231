// The page's image preprocessing and scoring, as convkit's loadPredictor does them in Node
// (src/deploy/predictor.ts), so that the browser and onnxruntime-node see the same tensor: the
// shorter side resized to the metadata's `resize` (antialiased bilinear, PyTorch's and PIL's
// weights), torchvision's centre crop, x / 255, (x - mean) / std. No DOM here: Node's tests
// import this file too.
// @ts-check

/**
 * @typedef {{ classNames: string[] | null, inputSize: number[] | null, mean: number[] | null,
 *   std: number[] | null, resize: number | null, crop: [number, number] | null }} ModelInfo
 * @typedef {{ data: Uint8Array | Uint8ClampedArray, width: number, height: number }} RgbaImage
 * @typedef {{ index: number, label: string, probability: number }} Prediction
 */

/** The largest image side the page decodes (a guard against huge files, as convkit's readers have). */
export const MAX_SIDE = 16384;

/**
 * What the page needs from the metadata, checked: [channels, height, width] with 1 or 3 channels,
 * mean/std per channel and a crop equal to the input size. Returns an error message, or null.
 * @param {ModelInfo} info
 * @returns {string | null}
 */
export function checkInfo(info) {
  const size = info.inputSize;
  if (!size || size.length !== 3) return `the page runs image models with input size [channels, height, width], this one takes ${JSON.stringify(size)}`;
  const [c, h, w] = size;
  if (c !== 1 && c !== 3) return `the page runs 1- or 3-channel image models, this one takes ${c} channels`;
  if (!info.mean || !info.std || !info.crop) return 'the model has no preprocessing metadata (mean, std, crop): export it with `convkit export`';
  if (info.mean.length !== c || info.std.length !== c) return `mean and std must have ${c} values (one per channel), got ${info.mean.length} and ${info.std.length}`;
  if (info.crop[0] !== h || info.crop[1] !== w) return `the crop ${info.crop.join('x')} differs from the input size ${h}x${w}`;
  return null;
}

/**
 * Interleaved RGBA to float planes of `channels`: 3 keeps R, G, B; 1 is PIL's integer luma, which
 * convkit's image decoder uses too (exact for gray pixels). Alpha is dropped.
 * @param {RgbaImage} image
 * @param {number} channels
 * @returns {Float32Array}
 */
export function planes(image, channels) {
  const { data, width, height } = image;
  const n = width * height;
  if (data.length !== 4 * n) throw new RangeError(`planes: a ${width}x${height} RGBA image has ${4 * n} bytes, got ${data.length}`);
  const out = new Float32Array(channels * n);
  for (let i = 0; i < n; i++) {
    const r = data[4 * i], g = data[4 * i + 1], b = data[4 * i + 2];
    if (channels === 1) out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    else {
      out[i] = r;
      out[n + i] = g;
      out[2 * n + i] = b;
    }
  }
  return out;
}

/**
 * The taps of antialiased bilinear resampling from `inSize` to `outSize` (align_corners false):
 * a triangle filter stretched by the scale when downsampling, as PyTorch's
 * interpolate(antialias=True) and PIL compute them, each output's weights normalised to sum 1.
 * @param {number} inSize
 * @param {number} outSize
 * @returns {{ start: Int32Array, count: Int32Array, weights: Float64Array, width: number }}
 */
export function resampleTaps(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const width = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * width);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.max(0, 1 - Math.abs((j + lo - center + 0.5) * invscale));
      weights[i * width + j] = w;
      total += w;
    }
    for (let j = 0; j < n; j++) weights[i * width + j] = total > 0 ? weights[i * width + j] / total : 0;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, width };
}

/**
 * Resizes float planes [channels, h, w] to [channels, outH, outW]: rows first, then columns.
 * @param {Float32Array} src
 * @param {number} channels
 * @param {number} h
 * @param {number} w
 * @param {number} outH
 * @param {number} outW
 * @returns {Float32Array}
 */
export function resizePlanes(src, channels, h, w, outH, outW) {
  if (outH === h && outW === w) return src;
  const tx = resampleTaps(w, outW);
  const ty = resampleTaps(h, outH);
  const mid = new Float32Array(channels * h * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const row = (c * h + y) * w;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let j = 0, base = x * tx.width; j < tx.count[x]; j++) s += tx.weights[base + j] * src[row + tx.start[x] + j];
        mid[(c * h + y) * outW + x] = s;
      }
    }
  }
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outH; y++) {
      const base = y * ty.width;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let j = 0; j < ty.count[y]; j++) s += ty.weights[base + j] * mid[(c * h + ty.start[y] + j) * outW + x];
        out[(c * outH + y) * outW + x] = s;
      }
    }
  }
  return out;
}

/** Python's round(): halves to even, as torchvision's CenterCrop offset. @param {number} v */
function roundHalfEven(v) {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/**
 * The model's input [channels, crop height, crop width] of an RGBA image, preprocessed as the
 * metadata says (and as loadPredictor does).
 * @param {RgbaImage} image
 * @param {ModelInfo} info a checked one (checkInfo)
 * @returns {Float32Array}
 */
export function preprocess(image, info) {
  const mean = /** @type {number[]} */ (info.mean);
  const std = /** @type {number[]} */ (info.std);
  const [ch, cw] = /** @type {[number, number]} */ (info.crop);
  const c = mean.length;
  const { width: w, height: h } = image;
  const side = info.resize ?? Math.min(ch, cw);
  const scale = side / Math.min(h, w);
  const rh = Math.max(ch, Math.round(h * scale));
  const rw = Math.max(cw, Math.round(w * scale));
  const resized = resizePlanes(planes(image, c), c, h, w, rh, rw);
  const top = roundHalfEven((rh - ch) / 2);
  const left = roundHalfEven((rw - cw) / 2);
  const out = new Float32Array(c * ch * cw);
  for (let k = 0; k < c; k++) {
    const m = Math.fround(mean[k]);
    const s = Math.fround(std[k]);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const v = Math.fround(resized[(k * rh + y + top) * rw + x + left] / 255);
        out[(k * ch + y) * cw + x] = Math.fround(v - m) / s;
      }
    }
  }
  return out;
}

/**
 * Softmax of one row of logits, in double precision as loadPredictor's topK.
 * @param {ArrayLike<number>} logits
 * @returns {number[]}
 */
export function softmax(logits) {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return Array.from(logits, (v) => Math.exp(v - max) / sum);
}

/**
 * The k most probable classes (ties in index order).
 * @param {number[]} probabilities
 * @param {number} k
 * @param {string[] | null} classNames
 * @returns {Prediction[]}
 */
export function topK(probabilities, k, classNames) {
  return probabilities
    .map((p, index) => ({ index, p }))
    .sort((a, b) => b.p - a.p || a.index - b.index)
    .slice(0, Math.max(1, k))
    .map(({ index, p }) => ({ index, label: classNames?.[index] ?? String(index), probability: p }));
}
