// Autograd semantics: leaves, requiresGrad, backward with and without a gradient, retained graphs,
// accumulation and zeroing, grad mode scopes, detach, and the names of the backward nodes
// (checked against PyTorch's).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  F, Tensor, enableGrad, isGradEnabled, manualSeed, noGrad, ones, randn, tensor, tidy, zeros,
} from '../../src/engine/index.js';
import { OracleBatch, assertClose, decodeString } from '../helpers/oracle.js';

manualSeed(2);
const tol = { rtol: 1e-6, atol: 1e-6 };
const leaf = (...shape: number[]): Tensor => randn(shape, { requiresGrad: true });

describe('requiresGrad and leaves', () => {
  test('requiresGrad defaults to false and can be set three ways', () => tidy(() => {
    const a = randn([2]);
    assert.equal(a.requiresGrad, false);
    a.requiresGrad = true;
    assert.equal(a.requiresGrad, true);
    const b = randn([2]).requiresGrad_();
    assert.equal(b.requiresGrad, true);
    assert.equal(b.requiresGrad_(false).requiresGrad, false);
    assert.equal(zeros([2], { requiresGrad: true }).requiresGrad, true);
    assert.equal(tensor([1.5, 2], { requiresGrad: true }).requiresGrad, true);
  }));

  test('ops on tensors that need no grad record nothing', () => tidy(() => {
    const y = randn([3]).mul(2).exp();
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(y.isLeaf, true);
  }));

  test('isLeaf and requiresGrad propagate', () => tidy(() => {
    const x = leaf(3);
    const c = randn([3]);
    const y = x.mul(c);
    assert.equal(x.isLeaf, true);
    assert.equal(c.isLeaf, true);
    assert.equal(y.isLeaf, false);
    assert.equal(y.requiresGrad, true);
    assert.equal(x.gradFn, null);
    assert.equal(x.grad, null);
  }));

  test('integer tensors cannot require grad', () => tidy(() => {
    assert.throws(() => { tensor([1, 2]).requiresGrad = true; }, /floating point/);
  }));
});

describe('backward', () => {
  test('scalar backward gives d/dx', () => tidy(() => {
    const x = leaf(4);
    x.mul(x).sum().backward();
    assertClose(x.grad!, x.detach().mul(2), tol, 'd sum(x^2)/dx');
  }));

  test('non-scalar backward needs an explicit gradient', () => tidy(() => {
    const x = leaf(2, 3);
    const y = x.mul(x);
    assert.throws(() => y.backward(), /scalar/);
    const g = randn([2, 3]);
    y.backward(g);
    assertClose(x.grad!, x.detach().mul(2).mul(g), tol, 'vector-Jacobian product');
  }));

  test('a gradient of the wrong shape is an error', () => tidy(() => {
    const x = leaf(2, 3);
    assert.throws(() => x.mul(2).backward(randn([3, 2])), /shape|size/i);
  }));

  test('backward on a tensor that needs no grad is an error', () => tidy(() => {
    assert.throws(() => randn([2]).sum().backward(), /does not require grad/);
  }));

  test('second backward through a freed graph is an error; retainGraph allows it', () => tidy(() => {
    const x = leaf(3);
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    const once = x.grad!.clone();
    y.backward(undefined, { retainGraph: true });
    assertClose(x.grad!, once.mul(2), tol, 'two backwards through a retained graph accumulate');
    y.backward();
    assertClose(x.grad!, once.mul(3), tol, 'third backward');
    assert.throws(() => y.backward(), /second time/);
  }));

  test('grads accumulate across backwards; grad = null and zero_() reset them', () => tidy(() => {
    const x = leaf(3);
    x.mul(3).sum().backward();
    x.mul(x).sum().backward();
    assertClose(x.grad!, x.detach().mul(2).add(3), tol, 'accumulated 3 + 2x');

    x.grad = null;
    assert.equal(x.grad, null);
    x.mul(5).sum().backward();
    assertClose(x.grad!, ones([3]).mul(5), tol, 'fresh grad after grad = null');

    x.grad!.zero_();
    assertClose(x.grad!, zeros([3]), tol, 'zeroed in place');
    x.mul(7).sum().backward();
    assertClose(x.grad!, ones([3]).mul(7), tol, 'accumulates into the zeroed grad');
  }));

  test('a grad can be assigned, but only with the matching shape and dtype', () => tidy(() => {
    const x = leaf(3);
    x.grad = ones([3]);
    x.mul(2).sum().backward();
    assertClose(x.grad!, ones([3]).mul(3), tol, 'accumulates into the assigned grad');
    assert.throws(() => { x.grad = ones([4]); }, /assigned grad/);
    assert.throws(() => { x.grad = ones([3], { dtype: 'float64' }); }, /assigned grad/);
  }));

  test('a tensor used twice gets both contributions', () => tidy(() => {
    const x = leaf(3);
    const w = leaf(3, 3);
    w.matmul(x).add(x).sum().backward();
    assertClose(x.grad!, w.detach().sum(0).add(1), tol, 'd/dx (Wx + x)');
    assertClose(w.grad!, x.detach().unsqueeze(0).expand([3, 3]), tol, 'd/dW');
  }));

  test('in-place change of a saved tensor is caught at backward', () => tidy(() => {
    const x = leaf(3);
    const y = x.mul(2);
    const z = y.mul(y);
    y.add_(1);
    assert.throws(() => z.sum().backward(), /modified by an inplace operation/);
  }));

  test('in-place op on a leaf that requires grad is an error, allowed under noGrad', () => tidy(() => {
    const x = leaf(3);
    assert.throws(() => x.add_(1), /leaf Variable that requires grad/);
    const before = x.detach().clone();
    noGrad(() => x.add_(1));
    assertClose(x.detach(), before.add(1), tol, 'SGD-style update under noGrad');
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
  }));
});

describe('grad mode', () => {
  test('noGrad records no gradFn and returns fn value', () => tidy(() => {
    const x = leaf(3);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2);
    });
    assert.equal(isGradEnabled(), true);
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
  }));

  test('noGrad restores grad mode when fn throws', () => {
    assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => randn([2]).matmul(randn([3]))), /matmul/);
    assert.equal(isGradEnabled(), true);
  });

  test('enableGrad inside noGrad records, and noGrad resumes after it', () => tidy(() => {
    const x = leaf(3);
    const a = noGrad(() => {
      const a = enableGrad(() => {
        assert.equal(isGradEnabled(), true);
        return x.mul(2);
      });
      assert.equal(isGradEnabled(), false);
      assert.equal(a.requiresGrad, true);
      assert.match(a.gradFn!, /^MulBackward[01]$/);
      assert.equal(x.mul(2).gradFn, null);
      return a;
    });
    a.sum().backward();
    assertClose(x.grad!, ones([3]).mul(2), tol, 'grad from a graph built under enableGrad');
  }));

  test('nested noGrad keeps grad off until the outermost returns', () => {
    noGrad(() => {
      noGrad(() => assert.equal(isGradEnabled(), false));
      assert.equal(isGradEnabled(), false);
    });
    assert.equal(isGradEnabled(), true);
  });

  test('detach shares memory and leaves the graph', () => tidy(() => {
    const x = leaf(3);
    const y = x.mul(2);
    const d = y.detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.isLeaf, true);
    assert.equal(d.gradFn, null);
    assert.ok(d.sharesStorageWith(y));
    noGrad(() => d.mul_(0));
    assert.deepEqual(y.toArray(), [0, 0, 0]);
  }));
});

describe('channels-last layout', () => {
  test('a 1-channel batch made channels-last has canonical strides, and a convolution keeps the layout', () => tidy(() => {
    const x = randn([4, 1, 5, 6]).contiguous('channelsLast');
    assert.deepEqual(x.strides, [30, 1, 6, 1]);
    const w = randn([3, 1, 3, 3]).contiguous('channelsLast');
    assert.deepEqual(w.strides, [9, 1, 3, 1]);
    assert.ok(F.conv2d(x, w, null, { padding: 1 }).isChannelsLast());
    assert.ok(F.conv2d(x, randn([3, 1, 3, 3]), null, { padding: 1 }).isChannelsLast(), 'a channels-last input alone decides');
  }));
});

describe('gradFn names match PyTorch', () => {
  const cases: [string, string, (x: Tensor, w: Tensor, img: Tensor, c: Tensor) => Tensor][] = [
    // x * 2 in Python wraps 2 in a tensor (MulBackward0); the engine calls mul(Tensor, Scalar),
    // whose node is MulBackward1 (see 'scalar ops' below): same values, another node name.
    ['mul', 'x * w[1]', (x, w) => x.mul(w.select(0, 1))],
    ['add', 'x + w[0]', (x, w) => x.add(w.select(0, 0))],
    ['sum', 'x.sum()', (x) => x.sum()],
    ['mean', 'x.mean()', (x) => x.mean()],
    ['view', 'x.view(3, 1)', (x) => x.view([3, 1])],
    ['relu', 'F.relu(x)', (x) => F.relu(x)],
    ['matmul 2d', 'w @ w', (_x, w) => w.matmul(w)],
    ['linear', 'F.linear(w, w, x)', (x, w) => F.linear(w, w, x)],
    ['conv2d', 'F.conv2d(img, c)', (_x, _w, img, c) => F.conv2d(img, c)],
    ['batchNorm', 'F.batch_norm(img, None, None, training=True)', (_x, _w, img) => F.batchNorm(img, null, null, { training: true })],
    ['softmax', 'F.softmax(w, 1)', (_x, w) => F.softmax(w, 1)],
    ['logSoftmax', 'F.log_softmax(w, 1)', (_x, w) => F.logSoftmax(w, 1)],
    ['crossEntropy', 'F.cross_entropy(w, torch.tensor([0, 1, 2]))', (_x, w) => F.crossEntropy(w, tensor([0, 1, 2]))],
    ['maxPool2d', 'F.max_pool2d(img, 2)', (_x, _w, img) => F.maxPool2d(img, { kernelSize: 2 })],
    ['permute', 'w.permute(1, 0)', (_x, w) => w.permute([1, 0])],
  ];
  const batch = new OracleBatch();
  const key = batch.add(
    'x = torch.randn(3, requires_grad=True)\nw = torch.randn(3, 3, requires_grad=True)\nimg = torch.randn(2, 2, 4, 4, requires_grad=True)\n' +
      'c = torch.randn(3, 2, 3, 3, requires_grad=True)\n' +
      cases.map(([name, py]) => `O[${JSON.stringify(name)}] = S((${py}).grad_fn.name())`).join('\n'),
  );
  before(async () => { await batch.run(); });
  test('scalar ops record the Scalar overloads', () => tidy(() => {
    const x = leaf(3);
    assert.match(x.mul(2).gradFn!, /^MulBackward[01]$/);
    assert.match(x.add(2).gradFn!, /^AddBackward[01]$/);
  }));
  for (const [name, , js] of cases) {
    test(name, () => tidy(() => {
      const expected = decodeString(batch.get(key)[name]);
      assert.equal(js(leaf(3), leaf(3, 3), leaf(2, 2, 4, 4), leaf(3, 2, 3, 3)).gradFn, expected);
    }));
  }
});
