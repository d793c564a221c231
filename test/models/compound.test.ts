// Compound scaling of a base by any coefficients: the multipliers and resolution, MACs that grow
// by (alpha beta^2 gamma^2)^phi (about 2^phi) within the rounding of channels, layers and
// resolution, for phi = 0..7 (B0 to B7 sizes) with the paper's and with users' coefficients, the
// zoo's B1-B7 against their multipliers, and the errors for coefficients below 1.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EFFICIENTNET_B_VARIANTS } from '../../src/models/efficientnet.js';
import { checkCoefficients, describeScaledBase, describeScaling, scaleBase } from '../../src/models/scaling.js';
import { createModel } from '../../src/models/index.js';

describe('scaling a base by user coefficients', () => {
  test('multipliers, resolution rounding and the flops factor', () => {
    const s = scaleBase({ model: 'efficientnet_b0' }, { alpha: 1.2, beta: 1.1, gamma: 1.15, phi: 2 });
    assert.ok(Math.abs(s.depthMult - 1.44) < 1e-12 && Math.abs(s.widthMult - 1.21) < 1e-12);
    assert.equal(s.resolution, 296);
    assert.ok(Math.abs(s.flopsFactor - 1.2 * 1.21 * 1.3225) < 1e-12);
    // a small base at low resolution, rounded to a multiple of 4
    const small = scaleBase({ model: 'efficientnet_b0', widthMult: 0.5, depthMult: 0.5, resolution: 28, resolutionMultiple: 4 }, { alpha: 1, beta: 1, gamma: 1.3, phi: 1 });
    assert.equal(small.resolution, 36); // 28 x 1.3 = 36.4
    assert.equal(small.widthMult, 0.5);
    // the options build the model the description counts
    const m = createModel('efficientnet_b0', { numClasses: 10, ...s.modelOptions });
    try {
      assert.equal(m.numParameters(), describeScaledBase(s, { numClasses: 10 }).params);
    } finally {
      m.dispose();
    }
  });

  test('MACs follow (alpha beta^2 gamma^2)^phi within rounding, phi = 0..7, paper and user coefficients', () => {
    const sets = [
      { alpha: 1.2, beta: 1.1, gamma: 1.15 }, // the paper's: factor 1.92, so about 2^phi
      { alpha: 2, beta: 1, gamma: 1 }, // depth only: exactly 2
      { alpha: 1, beta: 1, gamma: 1.41 }, // resolution only
      { alpha: 1.1, beta: 1.3, gamma: 1 }, // a user's mix, width-heavy
    ];
    for (const c of sets) {
      const m0 = describeScaledBase(scaleBase({ model: 'efficientnet_b0' }, { ...c, phi: 0 })).macs;
      const ratios: number[] = [];
      for (let phi = 0; phi <= 7; phi++) {
        const s = scaleBase({ model: 'efficientnet_b0' }, { ...c, phi });
        ratios.push(describeScaledBase(s).macs / m0 / s.flopsFactor ** phi);
      }
      console.log(`${JSON.stringify(c)}: MACs / (a b^2 g^2)^phi for phi 0..7: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
      // repeats round up (ceil) and channels to multiples of 8: never far below, at most ~1.4 above
      for (const r of ratios) assert.ok(r > 0.9 && r < 1.45, `${JSON.stringify(c)}: ratio ${r}`);
      // rounding matters less as the model grows
      for (const r of ratios.slice(5)) assert.ok(Math.abs(r - 1) < 0.1, `${JSON.stringify(c)}: large-phi ratio ${r}`);
    }
    const paper = scaleBase({ model: 'efficientnet_b0' }, { alpha: 1.2, beta: 1.1, gamma: 1.15, phi: 1 });
    assert.ok(Math.abs(paper.flopsFactor - 2) < 0.1, 'the paper chose alpha beta^2 gamma^2 ~ 2: MACs about 2^phi');
  });

  test('the zoo\'s B0-B7: MACs = B0 x depth x width^2 x (resolution / 224)^2 within rounding', () => {
    const b0 = describeScaling({ widthMult: 1, depthMult: 1, resolution: 224 }).macs;
    for (const v of EFFICIENTNET_B_VARIANTS) {
      const m = describeScaling({ widthMult: v.widthMult, depthMult: v.depthMult, resolution: v.resolution }).macs;
      const r = m / (b0 * v.depthMult * v.widthMult ** 2 * (v.resolution / 224) ** 2);
      assert.ok(r >= 0.99 && r < 1.45, `${v.name}: ratio ${r}`);
    }
  });

  test('bad input: coefficients below 1, phi below 0, a base that is not an EfficientNet', () => {
    assert.throws(() => checkCoefficients({ alpha: 0.9, beta: 1, gamma: 1 }), /alpha must be a number >= 1 .*got 0\.9/);
    assert.throws(() => scaleBase({ model: 'efficientnet_b0' }, { alpha: 1.2, beta: 0.5, gamma: 1, phi: 1 }), /beta must be a number >= 1/);
    assert.throws(() => scaleBase({ model: 'efficientnet_b0' }, { alpha: 1.2, beta: 1, gamma: Number.NaN, phi: 1 }), /gamma must be a number >= 1/);
    assert.throws(() => scaleBase({ model: 'efficientnet_b0' }, { alpha: 1.2, beta: 1.1, gamma: 1.15, phi: -1 }), /phi must be a number >= 0/);
    assert.throws(() => scaleBase({ model: 'resnet18' }, { alpha: 1.2, beta: 1.1, gamma: 1.15, phi: 1 }), /cannot scale 'resnet18': the base must be an EfficientNet B variant/);
  });
});
