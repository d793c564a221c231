// RandAugment: every op against torchvision's _apply_op (0.14) image by image, at the magnitudes
// RandAugment uses (torchvision's tables, both signs), plus the transform on whole batches.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { manualSeed, randint, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { applyRandAugmentOp, augmentationSpace, RAND_AUGMENT_OPS, randAugment, type RandAugmentOp } from '../../src/data/index.js';
import { OracleBatch } from '../helpers/oracle.js';

const TV_NAMES: Record<RandAugmentOp, string> = {
  identity: 'Identity', shearX: 'ShearX', shearY: 'ShearY', translateX: 'TranslateX', translateY: 'TranslateY',
  rotate: 'Rotate', brightness: 'Brightness', color: 'Color', contrast: 'Contrast', sharpness: 'Sharpness',
  posterize: 'Posterize', solarize: 'Solarize', autocontrast: 'AutoContrast', equalize: 'Equalize',
};

const snippet = (op: RandAugmentOp): string => `
from torchvision.transforms.autoaugment import _apply_op
from torchvision.transforms import InterpolationMode
x, m = I['x'], I['m'].tolist()
O['y'] = torch.stack([_apply_op(x[i], '${TV_NAMES[op]}', float(m[i]), InterpolationMode.NEAREST, None) for i in range(x.shape[0])])
`;

// Signed magnitudes as RandAugment draws them, from torchvision's tables: a spread of bins
// (sample i uses bin 3 + 5i), alternating signs for signed ops.
function magnitudes(op: RandAugmentOp, n: number, h: number, w: number): number[] {
  const meta = augmentationSpace(31, h, w)[op];
  return Array.from({ length: n }, (_, i) => {
    const m = meta.table === null ? 0 : meta.table[(3 + 5 * i) % 31]!;
    return meta.signed && i % 2 === 1 ? -m : m;
  });
}

function diff(a: Tensor, b: Tensor): { count: number; max: number } {
  assert.deepEqual(a.shape, b.shape);
  const u = a.toTypedArray() as Uint8Array;
  const v = b.toTypedArray() as Uint8Array;
  let count = 0;
  let max = 0;
  for (let i = 0; i < u.length; i++) {
    const d = Math.abs(u[i]! - v[i]!);
    if (d > 0) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

// All ops are exact on this machine. Elsewhere, float reductions and convolutions could round
// differently batched than per image (a few pixels one grey level off), and warps could break a
// nearest-neighbour tie the other way (a few pixels): allow that much.
const TOLERANCE: Partial<Record<RandAugmentOp, { fraction: number; max: number }>> = {
  contrast: { fraction: 0.01, max: 1 },
  sharpness: { fraction: 0.01, max: 1 },
  shearX: { fraction: 0.005, max: 255 },
  shearY: { fraction: 0.005, max: 255 },
  rotate: { fraction: 0.005, max: 255 },
};

describe('RandAugment ops match torchvision image by image', () => {
  const oracle = new OracleBatch();
  const cases: { name: string; op: RandAugmentOp; x: Tensor; mags: number[]; key: number }[] = [];
  const inputs: Tensor[] = [];

  before(async () => {
    manualSeed(7);
    // Non-square, so swapped height and width would show; a narrow-range gray batch so that
    // autocontrast and equalize have something to stretch.
    const rgb = tidy(() => randint(0, 256, [6, 3, 20, 24]).to('uint8')).keep();
    const gray = tidy(() => randint(40, 200, [4, 1, 28, 28]).to('uint8')).keep();
    inputs.push(rgb, gray);
    for (const x of inputs) {
      const [n, c, h, w] = x.shape as [number, number, number, number];
      for (const op of RAND_AUGMENT_OPS) {
        const mags = magnitudes(op, n, h, w);
        const m = tensor(Float64Array.from(mags));
        const name = `${op} on ${n}x${c}x${h}x${w}`;
        cases.push({ name, op, x, mags, key: oracle.add(snippet(op), { x, m }, name) });
        m.dispose();
      }
    }
    await oracle.run();
  });

  after(() => inputs.forEach((t) => t.dispose()));

  it('every op on RGB and grayscale batches', () => {
    for (const c of cases) {
      const expected = oracle.get(c.key).y!;
      const got = tidy(() => applyRandAugmentOp(c.x, c.op, c.mags).clone());
      assert.equal(got.dtype, 'uint8', c.name);
      const d = diff(got, expected);
      const tol = TOLERANCE[c.op] ?? { fraction: 0, max: 0 };
      assert.ok(d.count <= tol.fraction * got.numel() && (d.count === 0 || d.max <= tol.max),
        `${c.name}: ${d.count} of ${got.numel()} pixels differ from torchvision (max ${d.max})`);
      got.dispose();
    }
  });
});

describe('randAugment transform', () => {
  it('keeps shape, dtype and range, changes images, and is deterministic under manualSeed', () => {
    const x = tidy(() => randint(0, 256, [32, 3, 16, 16]).to('uint8'));
    const y = tidy(() => randint(0, 10, [32]));
    const t = randAugment({ numOps: 2, magnitude: 9 });
    const run = (): Tensor => {
      manualSeed(123);
      const out = t.apply({ x, y }, true);
      assert.equal(out.y, y, 'labels pass through');
      return out.x;
    };
    const a = run();
    const b = run();
    assert.deepEqual(a.shape, [32, 3, 16, 16]);
    assert.equal(a.dtype, 'uint8');
    assert.ok(a.equal(b), 'same seed, same augmentation');
    assert.ok(!a.equal(x), 'the batch changed');
    const evalOut = t.apply({ x, y }, false);
    assert.equal(evalOut.x, x, 'evaluation leaves the batch alone');
    for (const u of [a, b, x, y]) u.dispose();
  });

  it('rejects float input with a message that says where it belongs', () => {
    const x = tidy(() => randint(0, 256, [2, 3, 8, 8]).float());
    const y = tidy(() => randint(0, 10, [2]));
    assert.throws(() => randAugment().apply({ x, y }, true), /randAugment: expected uint8 images \(place it before toFloat\/normalize\), got float32/);
    x.dispose();
    y.dispose();
  });

  it('rejects unknown ops and options', () => {
    assert.throws(() => randAugment({ ops: ['identity', 'invert' as never] }), /option 'ops'/);
    assert.throws(() => randAugment({ magnitude: 31 }), /option 'magnitude' must be an integer >= 0 <= 30/);
    assert.throws(() => randAugment({ numOp: 2 } as never), /unknown option 'numOp'/);
  });
});
