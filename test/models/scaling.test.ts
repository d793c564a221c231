// The compound-scaling API: phi -> (depth, width, resolution) multipliers, scaled models equal
// to the named B variants, and FLOPs that about double per unit of phi.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EFFICIENTNET_B_VARIANTS } from '../../src/models/efficientnet.js';
import { compoundScaling, describeScaling, efficientnetScaled, formatScalingTable, type ScalingReport } from '../../src/models/scaling.js';

describe('compound scaling', () => {
  test('phi gives alpha^phi, beta^phi and 224 gamma^phi rounded to a multiple of 8', () => {
    assert.deepEqual(compoundScaling({ phi: 0 }), { phi: 0, widthMult: 1, depthMult: 1, resolution: 224 });
    const s = compoundScaling({ phi: 2 });
    assert.ok(Math.abs(s.depthMult - 1.44) < 1e-12 && Math.abs(s.widthMult - 1.21) < 1e-12);
    assert.equal(s.resolution, 296); // 224 x 1.15^2 = 296.2
    assert.equal(compoundScaling({ phi: 1, gamma: 1 }).resolution, 224);
    assert.deepEqual(compoundScaling({ widthMult: 1.1, depthMult: 1.2, resolution: 260 }), { phi: null, widthMult: 1.1, depthMult: 1.2, resolution: 260 });
    assert.throws(() => compoundScaling({ phi: Number.NaN }), /phi must be a finite number/);
    assert.throws(() => compoundScaling({ widthMult: 0, depthMult: 1 }), /widthMult must be a positive number/);
  });

  test('explicit multipliers rebuild the named B variants exactly', () => {
    // torchvision's published counts: scaling B0's table reproduces them
    const published = [5_288_548, 7_794_184, 9_109_994, 12_233_232];
    for (const [i, count] of published.entries()) {
      const v = EFFICIENTNET_B_VARIANTS[i];
      const m = efficientnetScaled({ widthMult: v.widthMult, depthMult: v.depthMult, resolution: v.resolution });
      try {
        assert.equal(m.numParameters(), count, `${v.name} from its multipliers`);
        assert.equal(m.resolution, v.resolution);
      } finally {
        m.dispose();
      }
    }
  });

  test('FLOPs grow about 2^phi (phi = 0..3)', () => {
    const reports: ScalingReport[] = [0, 1, 2, 3].map((phi) => describeScaling({ phi }));
    console.log(`compound scaling from B0 (alpha 1.2, beta 1.1, gamma 1.15):\n${formatScalingTable(reports)}`);
    // B0 at 224: 0.39 G multiply-adds (the paper's "0.39B FLOPs" count multiply-adds)
    assert.ok(reports[0].macs > 0.38e9 && reports[0].macs < 0.41e9, `B0 MACs ${reports[0].macs}`);
    assert.equal(reports[0].params, 5_288_548);
    for (const r of reports.slice(1)) {
      const ratio = r.macs / reports[0].macs;
      const ideal = 2 ** r.phi!;
      // rounding depth up and widths to multiples of 8 make the steps uneven, not far off
      assert.ok(ratio > ideal / 1.6 && ratio < ideal * 1.6, `phi=${r.phi}: MAC ratio ${ratio.toFixed(2)}, expected about ${ideal}`);
      assert.ok(r.params > reports[r.phi! - 1].params);
    }
  });
});
