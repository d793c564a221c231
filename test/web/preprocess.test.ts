// The page's preprocessing (web/preprocess.js, plain JS for the browser) against libtorch's: the
// antialiased bilinear resize of F.interpolate (down and up, odd sizes), torchvision's centre
// crop, PIL's luma, and the normalisation, as loadPredictor chains them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad, tensor, tidy } from '../../src/engine/index.js';
import { centerCropBatch, resizeBatch } from '../../src/data/ops.js';
import { prng } from '../helpers/prng.js';

interface Info { classNames: string[] | null; inputSize: number[] | null; mean: number[] | null; std: number[] | null; resize: number | null; crop: [number, number] | null }
interface Rgba { data: Uint8Array; width: number; height: number }
interface PreprocessModule {
  preprocess(image: Rgba, info: Info): Float32Array;
  planes(image: Rgba, channels: number): Float32Array;
  checkInfo(info: Info): string | null;
  softmax(logits: ArrayLike<number>): number[];
  topK(p: number[], k: number, names: string[] | null): { index: number; label: string; probability: number }[];
}
// web/ is not compiled: the test loads the very file the page serves
const web = (await import(new URL('../../../web/preprocess.js', import.meta.url).href)) as PreprocessModule;

function randomRgba(h: number, w: number, seed: number): Rgba {
  const r = prng(seed);
  return { data: Uint8Array.from({ length: 4 * h * w }, (_, i) => (i % 4 === 3 ? 255 : Math.floor(r() * 256))), width: w, height: h };
}

/** loadPredictor's preprocessing, on libtorch: planes -> resize (shorter side) -> centre crop -> normalise. */
function reference(planes: Float32Array, c: number, h: number, w: number, info: Info): Float32Array {
  return noGrad(() => tidy(() => {
    const [ch, cw] = info.crop!;
    const side = info.resize ?? Math.min(ch, cw);
    const scale = side / Math.min(h, w);
    const x = resizeBatch(tensor(planes, { shape: [1, c, h, w] }), [Math.max(ch, Math.round(h * scale)), Math.max(cw, Math.round(w * scale))]);
    const m = tensor(info.mean!).view([1, c, 1, 1]);
    const s = tensor(info.std!).view([1, c, 1, 1]);
    return centerCropBatch(x, [ch, cw]).div(255).sub(m).div(s).contiguous().toTypedArray() as Float32Array;
  }));
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('resize, crop and normalisation equal libtorch\'s (antialiased bilinear) for RGB and gray', () => {
  const cases: { h: number; w: number; c: number; resize: number | null; crop: [number, number] }[] = [
    { h: 40, w: 50, c: 3, resize: 36, crop: [32, 32] }, // down, then a crop on both axes
    { h: 97, w: 61, c: 3, resize: 32, crop: [32, 32] }, // strong, uneven downscale
    { h: 20, w: 13, c: 3, resize: 36, crop: [32, 32] }, // up
    { h: 28, w: 28, c: 1, resize: 28, crop: [28, 28] }, // as is
    { h: 45, w: 33, c: 1, resize: null, crop: [28, 24] }, // no resize in the metadata: the crop's shorter side
    { h: 31, w: 29, c: 3, resize: 30, crop: [27, 27] }, // odd margins (torchvision's round half to even)
  ];
  cases.forEach(({ h, w, c, resize, crop }, k) => {
    const info: Info = { classNames: null, inputSize: [c, ...crop], mean: c === 3 ? [0.485, 0.456, 0.406] : [0.286], std: c === 3 ? [0.229, 0.224, 0.225] : [0.353], resize, crop };
    const img = randomRgba(h, w, 100 + k);
    const got = web.preprocess(img, info);
    const want = reference(web.planes(img, c), c, h, w, info);
    assert.equal(got.length, c * crop[0] * crop[1]);
    // float32 sums in another order; one grey level is 1/255/0.2 ~ 0.02
    assert.ok(maxAbsDiff(got, want) < 2e-5, `case ${k} (${h}x${w} -> ${crop.join('x')}): max difference ${maxAbsDiff(got, want)}`);
  });
});

test('PIL\'s luma for gray models, alpha dropped, and checkInfo\'s refusals', () => {
  const img: Rgba = { data: Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 7, 77, 77, 77, 255]), width: 2, height: 2 };
  // PIL: L = R * 299/1000 + G * 587/1000 + B * 114/1000, in 16-bit fixed point; gray stays gray
  assert.deepEqual([...web.planes(img, 1)], [76, 150, 29, 77]);
  assert.deepEqual([...web.planes(img, 3)], [255, 0, 0, 77, 0, 255, 0, 77, 0, 0, 255, 77]);
  const ok: Info = { classNames: null, inputSize: [3, 8, 8], mean: [0, 0, 0], std: [1, 1, 1], resize: 8, crop: [8, 8] };
  assert.equal(web.checkInfo(ok), null);
  assert.match(web.checkInfo({ ...ok, inputSize: [28, 28] })!, /input size \[channels, height, width\]/);
  assert.match(web.checkInfo({ ...ok, inputSize: [4, 8, 8] })!, /1- or 3-channel/);
  assert.match(web.checkInfo({ ...ok, mean: null })!, /no preprocessing metadata/);
  assert.match(web.checkInfo({ ...ok, std: [1] })!, /3 values/);
  assert.match(web.checkInfo({ ...ok, crop: [7, 8] })!, /crop 7x8 differs/);
});

test('softmax and top-k as loadPredictor\'s topK', () => {
  const p = web.softmax(Float32Array.from([1000, 999, 0, 999]));
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  const top = web.topK(p, 3, ['a', 'b', 'c', 'd']);
  // equal scores keep index order
  assert.deepEqual(top.map((t) => t.label), ['a', 'b', 'd']);
  assert.ok(Math.abs(top[0].probability - 1 / (1 + 2 * Math.exp(-1))) < 1e-12);
  assert.deepEqual(web.topK([0.2, 0.8], 5, null).map((t) => t.label), ['1', '0']);
});
