// The sanity checks the literature asks of a saliency method, on a model trained here in a few
// seconds on a synthetic task whose evidence is known: the class is set by a small striped
// patch at a random position on a noisy background.
// - localisation: Grad-CAM's peak falls inside the patch for >= 90 % of test images;
// - model randomisation (Adebayo et al. 2018): re-drawing the weights changes the maps (a map
//   that survives it explains the image, not the model), and the check itself can fail: a
//   model-independent "map" (the image's brightness) does not pass it;
// - completeness (Sundararajan et al. 2017): Integrated Gradients' attributions add up to the
//   score's change from the baseline within 1 %.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { F, manualSeed, noGrad, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { Rng } from '../../src/data/index.js';
import { Adam } from '../../src/train/optim/index.js';
import { createModel } from '../../src/models/index.js';
import { explain, gradCam, integratedGradients, occlusion, type ExplainModel } from '../../src/explain/index.js';
import { TinyCnn } from '../train/tiny_model.js';

const S = 24;
const P = 6;
const CLASSES = 3;

interface PatchData { x: Tensor; y: number[]; boxes: [number, number][] }

/** Noise in [0, 0.3]; an 8x8 patch: horizontal stripes, vertical stripes or a checkerboard (the class). */
function patchData(n: number, seed: number): PatchData {
  const rng = Rng.fromKeys(seed, 0x5a7c);
  const data = new Float32Array(n * S * S);
  const y: number[] = [];
  const boxes: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const c = rng.int(CLASSES);
    const py = rng.int(S - P + 1);
    const px = rng.int(S - P + 1);
    y.push(c);
    boxes.push([py, px]);
    const img = data.subarray(i * S * S, (i + 1) * S * S);
    for (let k = 0; k < S * S; k++) img[k] = 0.3 * rng.next();
    for (let r = 0; r < P; r++) {
      for (let q = 0; q < P; q++) {
        const on = c === 0 ? r % 2 === 0 : c === 1 ? q % 2 === 0 : (r + q) % 2 === 0;
        img[(py + r) * S + px + q] = on ? 1 : 0;
      }
    }
  }
  return { x: tensor(data, { shape: [n, 1, S, S] }).sub(0.3).keep(), y, boxes };
}

function train(model: ExplainModel, d: PatchData, steps: number): void {
  const opt = new Adam(model.parameters(), { lr: 0.01 });
  const rng = Rng.fromKeys(1);
  const n = d.y.length;
  const labels = tensor(d.y, { dtype: 'int64' }).keep();
  model.train();
  for (let s = 0; s < steps; s++) {
    tidy(() => {
      const idx = tensor(Array.from({ length: 32 }, () => rng.int(n)), { dtype: 'int64' });
      const out = model.call(d.x.indexSelect(0, idx)) as Tensor;
      const loss = F.crossEntropy(out, labels.indexSelect(0, idx));
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
  }
  model.eval();
  labels.dispose();
}

function accuracy(model: ExplainModel, d: PatchData): number {
  const pred = noGrad(() => tidy(() => (model.call(d.x) as Tensor).argmax(1).toArray() as number[]));
  return pred.filter((p, i) => p === d.y[i]).length / d.y.length;
}

/** Spearman's rank correlation of two maps. */
function spearman(a: Float32Array, b: Float32Array): number {
  const rank = (v: Float32Array): Float64Array => {
    const order = Array.from(v.keys()).sort((i, j) => v[i] - v[j]);
    const r = new Float64Array(v.length);
    // ties share their mean rank, so a constant map correlates with nothing
    for (let i = 0; i < order.length;) {
      let j = i;
      while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
      for (let k = i; k <= j; k++) r[order[k]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const mean = (v: Float64Array): number => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0; let da = 0; let db = 0;
  for (let i = 0; i < ra.length; i++) { num += (ra[i] - ma) * (rb[i] - mb); da += (ra[i] - ma) ** 2; db += (rb[i] - mb) ** 2; }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

const maps = (m: ExplainModel, x: Tensor, method: 'gradcam' | 'ig'): Float32Array[] => explain(m, x, { method, steps: 16 }).map((e) => e.map);

describe('explanation sanity on a synthetic patch task', () => {
  let model: ExplainModel;
  let test_: PatchData;
  let trainSet: PatchData;

  before(() => {
    manualSeed(0);
    trainSet = patchData(2000, 1);
    test_ = patchData(100, 2);
    model = new TinyCnn({ numClasses: CLASSES });
    const t0 = performance.now();
    train(model, trainSet, 100);
    console.log(`trained in ${((performance.now() - t0) / 1000).toFixed(1)} s, test accuracy ${(100 * accuracy(model, test_)).toFixed(0)} %`);
  });

  test('the model learned the task (else the maps below mean nothing)', () => {
    assert.ok(accuracy(model, test_) >= 0.9, `test accuracy ${accuracy(model, test_)}`);
  });

  test('Grad-CAM and Grad-CAM++ peaks fall inside the patch for >= 90 % of test images', () => {
    for (const method of ['gradcam', 'gradcampp'] as const) {
      const r = gradCam(model, test_.x, { method });
      const m = r.maps.toTypedArray() as Float32Array;
      let inside = 0;
      test_.boxes.forEach(([py, px], i) => {
        const img = m.subarray(i * S * S, (i + 1) * S * S);
        let best = 0;
        for (let k = 1; k < img.length; k++) if (img[k] > img[best]) best = k;
        const [yy, xx] = [Math.floor(best / S), best % S];
        if (yy >= py && yy < py + P && xx >= px && xx < px + P) inside++;
      });
      console.log(`${method}: peak inside the patch for ${inside} of ${test_.boxes.length} test images`);
      assert.ok(inside >= 90, `${method}: peak inside the patch for only ${inside} of 100 images`);
    }
  });

  test('randomising the weights changes the maps; a model-independent map fails the same check', () => {
    const x = test_.x.narrow(0, 0, 20);
    const random = new TinyCnn({ numClasses: CLASSES });
    random.eval();
    // the BN statistics carried over, so only the learned weights differ
    for (const [k, t] of model.stateDict()) if (k.includes('running')) random.stateDict().get(k)!.copy_(t);
    const image = (_m: ExplainModel): Float32Array[] => Array.from({ length: 20 }, (_, i) => x.narrow(0, i, 1).contiguous().toTypedArray() as Float32Array);
    const rho = (f: (m: ExplainModel) => Float32Array[]): number => {
      const a = f(model);
      const b = f(random);
      return a.reduce((s, v, i) => s + spearman(v, b[i]), 0) / a.length;
    };
    const cam = rho((m) => maps(m, x, 'gradcam'));
    const ig = rho((m) => maps(m, x, 'ig'));
    const igAbs = rho((m) => maps(m, x, 'ig').map((v) => Float32Array.from(v, Math.abs)));
    const control = rho(image);
    console.log(`mean Spearman rank correlation, trained vs randomised weights: Grad-CAM ${cam.toFixed(3)}, IG ${ig.toFixed(3)} (|IG| ${igAbs.toFixed(3)}), the image itself ${control.toFixed(3)}`);
    // Grad-CAM keeps some of the patch (random filters still answer to its contrast), as Adebayo et
    // al. found for gradient maps; |IG| keeps more (input x gradient carries the image's edges),
    // which is why the check is on signed IG, as theirs is on signed maps too
    assert.ok(cam < 0.6, `Grad-CAM maps survive weight randomisation (rho ${cam})`);
    assert.ok(ig < 0.3, `IG maps survive weight randomisation (rho ${ig})`);
    assert.ok(control > 0.99, 'the check must flag a map that ignores the model');
    random.dispose();
  });

  test('Integrated Gradients: completeness within 1 % (trained CNN, and resnet18 with random weights)', () => {
    for (let i = 0; i < 3; i++) {
      const r = integratedGradients(model, test_.x.narrow(0, i, 1), { steps: 128 });
      const diff = r.score - r.baselineScore;
      assert.ok(Math.abs(diff) > 1e-3);
      assert.ok(r.completenessError < 0.01, `image ${i}: sum ${r.attributionSum} vs score change ${diff} (${(100 * r.completenessError).toFixed(2)} %)`);
      // the reported figures are what they say
      assert.ok(Math.abs(r.attributions.sum().item() - r.attributionSum) < 1e-4 * Math.max(1, Math.abs(diff)));
    }
    manualSeed(5);
    const resnet = createModel('resnet18', { numClasses: 10 });
    try {
      const x = tensor(Float32Array.from({ length: 3 * 32 * 32 }, (_, k) => Math.sin(k)), { shape: [1, 3, 32, 32] });
      const r = integratedGradients(resnet, x, { steps: 128, classIndex: 3 });
      assert.equal(r.classIndex, 3);
      assert.ok(r.completenessError < 0.01, `resnet18: ${(100 * r.completenessError).toFixed(2)} %`);
    } finally {
      resnet.dispose();
    }
  });

  test('occlusion: covering the patch drops the class probability most', () => {
    let inside = 0;
    for (let i = 0; i < 10; i++) {
      const r = occlusion(model, test_.x.narrow(0, i, 1), { window: 8, stride: 4, fill: [-0.3] });
      const m = r.map.toTypedArray() as Float32Array;
      let best = 0;
      for (let k = 1; k < m.length; k++) if (m[k] > m[best]) best = k;
      const [py, px] = test_.boxes[i];
      const [yy, xx] = [Math.floor(best / S), best % S];
      if (yy >= py - 4 && yy < py + P + 4 && xx >= px - 4 && xx < px + P + 4) inside++;
    }
    assert.ok(inside >= 9, `occlusion peak near the patch for ${inside} of 10`);
  });
});
