// Batch transforms: shapes and dtypes, statistics, hand-computed crops, flips of exactly the
// selected samples, erased rectangles, mixup/cutmix targets, determinism, recipes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { arange, cat, F, full, manualSeed, randint, rand, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import {
  compose, cutmix, cutmixBatch, cutout, mixup, mixupBatch, normalize, ops, randomCrop, randomErasing,
  randomHorizontalFlip, randomResizedCrop, randomShift, randomVerticalFlip, resize, toFloat, torchUniform,
  transformFromSpec, type Batch, type BatchTransform, type Transform, type TransformSpec,
} from '../../src/data/index.js';
import { liveTensors } from './live.js';

const live = liveTensors();

const nums = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);

function images(n: number, c: number, h: number, w: number, seed = 1): Tensor {
  manualSeed(seed);
  return tidy(() => randint(0, 256, [n, c, h, w]).to('uint8'));
}

function labels(n: number, k = 10): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => i % k));
}

const freeBatch = (...bs: Batch[]): void => {
  const seen = new Set<Tensor>();
  for (const b of bs) for (const t of [b.x, b.y]) if (!seen.has(t)) { seen.add(t); t.dispose(); }
};

describe('toFloat and normalize', () => {
  it('toFloat scales uint8 to [0, 1] and passes float through', () => {
    const x = images(4, 3, 5, 5);
    const y = labels(4);
    const out = toFloat().apply({ x, y }, true);
    assert.equal(out.x.dtype, 'float32');
    assert.ok(out.x.allclose(tidy(() => x.float().div(255)), 1e-6, 1e-7));
    const again = toFloat().apply(out, true);
    assert.equal(again.x, out.x, 'float input is left as is');
    freeBatch({ x, y }, out);
  });

  it('normalize gives each channel the expected mean and std', () => {
    const x = images(64, 3, 8, 8);
    const y = labels(64);
    const xf = tidy(() => x.float().div(255));
    const mean = nums(tidy(() => xf.mean([0, 2, 3])));
    const std = nums(tidy(() => xf.std([0, 2, 3], false, 0)));
    const out = normalize({ mean, std }).apply({ x, y }, true); // uint8 in: scaled to [0, 1] first
    assert.equal(out.x.dtype, 'float32');
    for (const m of nums(tidy(() => out.x.mean([0, 2, 3])))) assert.ok(Math.abs(m) < 1e-4, `mean ${m}`);
    for (const s of nums(tidy(() => out.x.std([0, 2, 3], false, 0)))) assert.ok(Math.abs(s - 1) < 1e-4, `std ${s}`);
    const preset = normalize({ stats: 'imagenet' });
    assert.deepEqual(preset.options, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    const two = tidy(() => x.narrow(1, 0, 2).clone());
    assert.throws(() => normalize({ mean: [0.5, 0.5, 0.5], std: [1, 1, 1] }).apply({ x: two, y }, true), /3 values but the images have 2 channels/);
    two.dispose();
    freeBatch({ x, y }, out);
    xf.dispose();
  });
});

describe('crops', () => {
  // Reference: the crop of the image padded by `pad` (constant fill), computed element by element.
  function handCrop(x: Tensor, top: number[], left: number[], h: number, w: number, fill: number): number[] {
    const [n, c, H, W] = x.shape as [number, number, number, number];
    const v = nums(x);
    const out: number[] = [];
    for (let s = 0; s < n; s++) for (let k = 0; k < c; k++) for (let r = 0; r < h; r++) for (let q = 0; q < w; q++) {
      const yy = top[s]! + r;
      const xx = left[s]! + q;
      out.push(yy < 0 || yy >= H || xx < 0 || xx >= W ? fill : v[((s * c + k) * H + yy) * W + xx]!);
    }
    return out;
  }

  it('cropBatch equals a hand-computed padded crop for given offsets', () => {
    const x = images(3, 2, 6, 7);
    const top = [-4, 0, 2];
    const left = [3, -1, -4];
    const out = ops.cropBatch(x, top, left, [6, 7], { value: 9 });
    assert.deepEqual(out.shape, [3, 2, 6, 7]);
    assert.equal(out.dtype, 'uint8');
    assert.deepEqual(nums(out), handCrop(x, top, left, 6, 7, 9));
    out.dispose();
    x.dispose();
  });

  it('reflect and replicate padding equal F.pad then a crop', () => {
    const x = tidy(() => images(2, 1, 5, 6).float());
    for (const mode of ['reflect', 'replicate'] as const) {
      const padded = F.pad(x, [3, 3, 3, 3], mode);
      const got = ops.cropBatch(x, [-3, 1], [2, -3], [5, 6], { mode });
      const want = tidy(() => cat([padded.narrow(0, 0, 1).narrow(2, 0, 5).narrow(3, 5, 6), padded.narrow(0, 1, 1).narrow(2, 4, 5).narrow(3, 0, 6)], 0));
      assert.ok(got.equal(want), mode);
      for (const t of [padded, got, want]) t.dispose();
    }
    x.dispose();
  });

  it('randomCrop: each sample is a crop of the padded image at offsets within the padding; eval is a no-op', () => {
    const x = images(16, 1, 8, 8);
    const y = labels(16);
    const t = randomCrop({ size: 8, padding: 2 });
    manualSeed(5);
    const a = t.apply({ x, y }, true);
    manualSeed(5);
    const b = t.apply({ x, y }, true);
    assert.ok(a.x.equal(b.x), 'deterministic under manualSeed');
    const out = nums(a.x);
    let moved = 0;
    for (let s = 0; s < 16; s++) {
      const xs = tidy(() => x.narrow(0, s, 1));
      const found = [];
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
        const cand = handCrop(xs, [dy], [dx], 8, 8, 0);
        if (cand.every((v, i) => v === out[s * 64 + i])) found.push([dy, dx]);
      }
      assert.ok(found.length > 0, `sample ${s} is not a padded crop`);
      if (!found.some(([dy, dx]) => dy === 0 && dx === 0)) moved++;
      xs.dispose();
    }
    assert.ok(moved > 8, `most samples moved (${moved} of 16)`);
    const e = t.apply({ x, y }, false);
    assert.equal(e.x, x);
    const smaller = randomCrop({ size: 6, padding: 0 }).apply({ x, y }, false);
    assert.deepEqual(nums(smaller.x), handCrop(x, new Array(16).fill(1), new Array(16).fill(1), 6, 6, 0), 'eval: centre crop');
    freeBatch({ x, y }, a, b, smaller);
  });

  it('randomShift moves content by whole pixels within the range', () => {
    const x = images(8, 1, 10, 10);
    const y = labels(8);
    manualSeed(2);
    const out = randomShift({ width: 0.2, height: 2 }).apply({ x, y }, true);
    const v = nums(out.x);
    for (let s = 0; s < 8; s++) {
      const xs = tidy(() => x.narrow(0, s, 1));
      let ok = false;
      for (let dy = -2; dy <= 2 && !ok; dy++) for (let dx = -2; dx <= 2 && !ok; dx++) {
        ok = handCrop(xs, [dy], [dx], 10, 10, 0).every((p, i) => p === v[s * 100 + i]);
      }
      assert.ok(ok, `sample ${s}`);
      xs.dispose();
    }
    freeBatch({ x, y }, out);
  });

  it('randomResizedCrop: shape and dtype; each sample is its box resized (antialiased bilinear)', () => {
    const x = images(6, 3, 40, 30);
    const y = labels(6);
    const t = randomResizedCrop({ size: [16, 20] });
    manualSeed(11);
    const a = t.apply({ x, y }, true);
    assert.deepEqual(a.x.shape, [6, 3, 16, 20]);
    assert.equal(a.x.dtype, 'uint8');
    const boxes = [{ top: 0, left: 0, height: 40, width: 30 }, { top: 5, left: 3, height: 10, width: 20 }];
    const xs = tidy(() => x.narrow(0, 0, 2));
    const got = ops.resizedCropBatch(xs, boxes, [16, 20]);
    const want = tidy(() => cat(boxes.map((b, k) => F.interpolate(xs.narrow(0, k, 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width).float(), [16, 20], { mode: 'bilinear', antialias: true }).round().clamp(0, 255).to('uint8')), 0));
    assert.ok(got.equal(want));
    const e = t.apply({ x, y }, false);
    assert.deepEqual(e.x.shape, [6, 3, 16, 20], 'eval: centre crop + resize');
    const f = randomResizedCrop({ size: 12 }).apply({ x: tidy(() => x.float()), y }, true);
    assert.equal(f.x.dtype, 'float32');
    freeBatch({ x, y }, a, e, f, { x: xs, y: got }, { x: want, y: want });
  });

  it('resize keeps dtype and returns the batch when the size already matches', () => {
    const x = images(2, 3, 12, 12);
    const y = labels(2);
    const out = resize({ size: 24 }).apply({ x, y }, false);
    assert.deepEqual(out.x.shape, [2, 3, 24, 24]);
    assert.equal(out.x.dtype, 'uint8');
    assert.equal(resize({ size: 12 }).apply({ x, y }, true).x, x);
    freeBatch({ x, y }, out);
  });
});

describe('flips', () => {
  for (const [name, make, dim] of [['horizontal', randomHorizontalFlip, 3], ['vertical', randomVerticalFlip, 2]] as const) {
    it(`${name} flip mirrors exactly the selected samples`, () => {
      const x = images(32, 3, 5, 7);
      const y = labels(32);
      manualSeed(3);
      const selected = Array.from(torchUniform(32), (u) => u < 0.5); // what the transform will draw
      manualSeed(3);
      const out = make({ p: 0.5 }).apply({ x, y }, true);
      assert.ok(selected.some((s) => s) && selected.some((s) => !s));
      for (let s = 0; s < 32; s++) {
        const want = tidy(() => (selected[s] ? x.narrow(0, s, 1).flip([dim]) : x.narrow(0, s, 1)));
        const got = tidy(() => out.x.narrow(0, s, 1));
        assert.ok(got.equal(want), `sample ${s} (${selected[s] ? 'flipped' : 'kept'})`);
        want.dispose();
        got.dispose();
      }
      assert.equal(make({ p: 1 }).apply({ x, y }, false).x, x, 'eval: no flip');
      freeBatch({ x, y }, out);
    });
  }
});

// Bounding box and count of the pixels equal to `value` in one sample's first channel.
function region(plane: number[], H: number, W: number, value: number): { count: number; h: number; w: number } {
  let top = H, bottom = -1, left = W, right = -1, count = 0;
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
    if (plane[r * W + c] !== value) continue;
    count++;
    top = Math.min(top, r); bottom = Math.max(bottom, r); left = Math.min(left, c); right = Math.max(right, c);
  }
  return { count, h: count ? bottom - top + 1 : 0, w: count ? right - left + 1 : 0 };
}

describe('occlusion', () => {
  it('randomErasing (value 0) zeroes one rectangle per sample, of the requested area and aspect', () => {
    const x = tidy(() => full([24, 3, 32, 32], 255).to('uint8'));
    const y = labels(24);
    manualSeed(9);
    const out = randomErasing({ p: 1, scale: [0.05, 0.2], ratio: [0.5, 2] }).apply({ x, y }, true);
    const v = nums(out.x);
    for (let s = 0; s < 24; s++) {
      for (let c = 0; c < 3; c++) {
        const plane = v.slice((s * 3 + c) * 1024, (s * 3 + c + 1) * 1024);
        const r = region(plane, 32, 32, 0);
        assert.ok(r.count > 0, `sample ${s} erased`);
        assert.equal(r.count, r.h * r.w, `sample ${s}: the zeros form a rectangle`);
        assert.ok(r.count >= 0.04 * 1024 && r.count <= 0.22 * 1024, `sample ${s}: area ${r.count}`);
        assert.ok(r.h / r.w >= 0.4 && r.h / r.w <= 2.5, `sample ${s}: aspect ${r.h}/${r.w}`);
      }
    }
    const none = randomErasing({ p: 0 }).apply({ x, y }, true);
    assert.equal(none.x, x);
    freeBatch({ x, y }, out);
  });

  it("randomErasing value 'random' fills the rectangle with noise (float)", () => {
    const x = tidy(() => full([4, 3, 16, 16], 7));
    const y = labels(4);
    manualSeed(1);
    const out = randomErasing({ p: 1, value: 'random' }).apply({ x, y }, true);
    const changed = nums(tidy(() => out.x.ne(7).sum()))[0]!;
    assert.ok(changed > 0);
    freeBatch({ x, y }, out);
  });

  it('cutout zeroes a clipped size x size square', () => {
    const x = tidy(() => full([16, 1, 20, 20], 200).to('uint8'));
    const y = labels(16);
    manualSeed(4);
    const out = cutout({ size: 8 }).apply({ x, y }, true);
    const v = nums(out.x);
    for (let s = 0; s < 16; s++) {
      const r = region(v.slice(s * 400, (s + 1) * 400), 20, 20, 0);
      assert.equal(r.count, r.h * r.w);
      assert.ok(r.h <= 8 && r.w <= 8 && r.h >= 4 && r.w >= 4, `sample ${s}: ${r.h}x${r.w}`);
    }
    freeBatch({ x, y }, out);
  });
});

describe('mixup and cutmix', () => {
  // Sample i is a constant image of value V[i] with label i: then each output pixel value says
  // which samples were mixed, and in what proportion.
  const N = 8;
  const K = 10;
  const V = Array.from({ length: N }, (_, i) => 10 * i + 5);
  const constantBatch = (dtype: 'float32' | 'uint8'): Batch => ({
    x: tidy(() => tensor(V).view([N, 1, 1, 1]).expand([N, 3, 12, 12]).contiguous().to(dtype)),
    y: tidy(() => arange(N)),
  });

  function checkRows(t: number[]): void {
    for (let i = 0; i < N; i++) {
      const row = t.slice(i * K, (i + 1) * K);
      assert.ok(row.every((p) => p >= -1e-7 && p <= 1 + 1e-6), `row ${i} in [0, 1]`);
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `row ${i} sums to 1`);
    }
  }

  it('mixupBatch with a given lambda and permutation', () => {
    const b = constantBatch('float32');
    const perm = tensor([1, 0, 3, 2, 5, 4, 7, 6]);
    const out = mixupBatch(b, 0.7, perm, K);
    const t = nums(out.y);
    assert.ok(Math.abs(t[0 * K + 0]! - 0.7) < 1e-6 && Math.abs(t[0 * K + 1]! - 0.3) < 1e-6);
    const px = nums(tidy(() => out.x.select(2, 0).select(2, 0).select(1, 0)));
    assert.ok(Math.abs(px[0]! - (0.7 * 5 + 0.3 * 15)) < 1e-4);
    freeBatch(b, out, { x: perm, y: perm });
  });

  it('mixup: probability rows equal to the weights each image was mixed with; deterministic', () => {
    const b = constantBatch('float32');
    const t = mixup({ alpha: 1, numClasses: K });
    manualSeed(21);
    const out = t.apply(b, true);
    manualSeed(21);
    const again = t.apply(b, true);
    assert.ok(out.x.equal(again.x) && out.y.equal(again.y));
    assert.deepEqual(out.y.shape, [N, K]);
    assert.equal(out.y.dtype, 'float32');
    const rows = nums(out.y);
    checkRows(rows);
    const lambdas = new Set<string>();
    const px = nums(tidy(() => out.x.select(2, 0).select(2, 0).select(1, 0)));
    for (let i = 0; i < N; i++) {
      const row = rows.slice(i * K, (i + 1) * K);
      const expected = row.reduce((acc, p, k) => acc + p * (V[k] ?? 0), 0);
      assert.ok(Math.abs(px[i]! - expected) < 1e-3, `sample ${i}: pixel ${px[i]} vs targets ${expected}`);
      const weights = row.filter((p) => p > 1e-7).sort();
      if (weights.length === 2) lambdas.add(`${Math.min(...weights).toFixed(5)}`);
    }
    assert.ok(lambdas.size <= 1, 'one lambda for the batch');
    const e = t.apply(b, false);
    assert.equal(e.y, b.y, 'eval: labels untouched');
    freeBatch(b, out, again);
  });

  it('cutmix: target weights equal the pasted area fractions; pasted region is one box', () => {
    const b = constantBatch('uint8');
    manualSeed(8);
    const out = cutmix({ alpha: 1, numClasses: K }).apply(b, true);
    assert.equal(out.x.dtype, 'uint8');
    const rows = nums(out.y);
    checkRows(rows);
    const v = nums(out.x);
    for (let i = 0; i < N; i++) {
      const plane = v.slice(i * 3 * 144, i * 3 * 144 + 144);
      for (let k = 0; k < N; k++) {
        const frac = plane.filter((p) => p === V[k]).length / 144;
        assert.ok(Math.abs(frac - rows[i * K + k]!) < 1e-6, `sample ${i}, class ${k}: area ${frac} vs target ${rows[i * K + k]}`);
      }
    }
    freeBatch(b, out);
  });

  it('cutmixBatch with a given box', () => {
    const b = constantBatch('float32');
    const perm = tensor([7, 6, 5, 4, 3, 2, 1, 0]);
    const out = cutmixBatch(b, { top: 0, left: 0, height: 6, width: 12 }, perm, K, 0.1);
    const t = nums(out.y);
    // label smoothing 0.1 over 10 classes: on = 0.91, off = 0.01; half the image from sample 7
    assert.ok(Math.abs(t[0]! - (0.5 * 0.91 + 0.5 * 0.01)) < 1e-6);
    assert.ok(Math.abs(t[7]! - (0.5 * 0.01 + 0.5 * 0.91)) < 1e-6);
    assert.ok(Math.abs(t[1]! - 0.01) < 1e-6);
    freeBatch(b, out, { x: perm, y: perm });
  });
});

describe('compose and recipes', () => {
  it('a JSON recipe rebuilds the same pipeline, with the same output under the same seed', () => {
    const recipe: TransformSpec[] = [
      { name: 'randomCrop', size: 28, padding: 4 },
      { name: 'randomHorizontalFlip' },
      { name: 'randAugment', numOps: 2, magnitude: 9 },
      { name: 'normalize', stats: 'fashion-mnist' },
      { name: 'randomErasing', p: 0.25 },
      { name: 'mixup', alpha: 0.2 },
    ];
    const pipeline = compose(recipe, { numClasses: 10 });
    const spec = JSON.parse(JSON.stringify(pipeline.toJSON()));
    assert.equal(spec[0].paddingMode, 'constant', 'defaults are written out');
    assert.equal(spec[5].numClasses, 10, 'numClasses came from the context');
    const rebuilt = compose(spec);
    const x = images(16, 1, 28, 28);
    const y = labels(16);
    manualSeed(77);
    const a = pipeline({ x, y }, true);
    manualSeed(77);
    const b = rebuilt({ x, y }, true);
    assert.ok(a.x.equal(b.x) && a.y.equal(b.y));
    assert.deepEqual(a.x.shape, [16, 1, 28, 28]);
    assert.equal(a.x.dtype, 'float32');
    assert.deepEqual(a.y.shape, [16, 10]);
    assert.ok(!x.isDisposed && !y.isDisposed, 'the input batch belongs to the caller');
    const e = pipeline({ x, y }, false);
    assert.equal(e.y, y, 'eval: hard labels');
    assert.equal(e.x.dtype, 'float32', 'eval still normalizes');
    freeBatch({ x, y }, a, b, e);
  });

  it('pipelines nest, and a nested pipeline round-trips through its spec', () => {
    const inner = compose([{ name: 'randomCrop', size: 8, padding: 1 }, { name: 'randomHorizontalFlip' }]);
    const outer = compose([inner, { name: 'toFloat' }]);
    const spec = outer.toJSON();
    assert.equal(spec[0]!.name, 'compose');
    assert.deepEqual((spec[0]!.transforms as TransformSpec[]).map((t) => t.name), ['randomCrop', 'randomHorizontalFlip']);
    const rebuilt = compose(JSON.parse(JSON.stringify(spec)));
    const x = images(4, 1, 8, 8);
    const y = labels(4);
    manualSeed(6);
    const a = outer({ x, y }, true);
    manualSeed(6);
    const b = rebuilt({ x, y }, true);
    assert.ok(a.x.equal(b.x));
    freeBatch({ x, y }, a, b);
  });

  it('intermediate batches are disposed, the input and the output are not', () => {
    const made: Tensor[] = [];
    const step: BatchTransform = (batch) => {
      const x = batch.x.add(1);
      made.push(x);
      return { x, y: batch.y };
    };
    const x = tidy(() => rand([2, 1, 3, 3]));
    const y = labels(2);
    const out = compose([step, step, step])({ x, y }, true);
    assert.deepEqual(made.map((t) => t.isDisposed), [true, true, false]);
    assert.equal(out.x, made[2]);
    assert.ok(!x.isDisposed && !y.isDisposed);
    freeBatch({ x, y }, out);
  });

  it('specs are checked: unknown names and options, bad values', () => {
    assert.throws(() => transformFromSpec({ name: 'randomCorp', size: 3 }), /unknown transform 'randomCorp'; known: .*randomCrop/);
    assert.throws(() => transformFromSpec({ name: 'randomCrop', size: 28, pading: 4 }), /randomCrop: unknown option 'pading'; known options: size, padding/);
    assert.throws(() => transformFromSpec({ name: 'randomCrop', size: 28, padding: -1 }), /option 'padding' must be an integer >= 0, got -1/);
    assert.throws(() => transformFromSpec({ name: 'mixup' }), /mixup: option 'numClasses' must be an integer >= 1 \(required\)/);
    const t: Transform = transformFromSpec({ name: 'randomCrop', size: [24, 28], padding: 2 });
    assert.deepEqual(t.toJSON(), { name: 'randomCrop', size: [24, 28], padding: 2, paddingMode: 'constant', fill: 0 });
  });

  it('no transform leaves temporaries behind, in training or evaluation', () => {
    const specs: TransformSpec[] = [
      { name: 'toFloat' }, { name: 'normalize', stats: 'imagenet' }, { name: 'resize', size: 20 }, { name: 'centerCrop', size: 10 },
      { name: 'randomCrop', size: 12, padding: 4 }, { name: 'randomCrop', size: 12, padding: 2, paddingMode: 'reflect' },
      { name: 'randomShift' }, { name: 'randomResizedCrop', size: 9 }, { name: 'randomHorizontalFlip' }, { name: 'randomVerticalFlip' },
      { name: 'randomErasing', p: 1, value: 'random' }, { name: 'cutout', size: 4 }, { name: 'randAugment', numOps: 3 },
      { name: 'mixup', numClasses: 10 }, { name: 'cutmix', numClasses: 10 }, { name: 'mixupCutmix', numClasses: 10 },
    ];
    const x = images(8, 3, 12, 12);
    const y = labels(8);
    manualSeed(0);
    for (const spec of specs) {
      for (const training of [true, false]) {
        const before = live();
        const out = transformFromSpec(spec).apply({ x, y }, training);
        for (const t of [out.x, out.y]) if (t !== x && t !== y) t.dispose();
        assert.equal(live(), before, `${spec.name} (${training ? 'training' : 'eval'})`);
      }
    }
    freeBatch({ x, y });
  });
});
