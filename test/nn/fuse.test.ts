// Fused inference convolutions (nn/fuse.ts over native/fused_conv.cc) against the same model run
// op by op: every pattern the zoo has (conv+BN+ReLU/ReLU6/SiLU, residual add then ReLU, SE's
// conv+SiLU/Sigmoid on 1x1 maps, grouped and depthwise, strided and dilated), fp32 and bf16, and
// the cases where the fused path must step aside or refold; and training's BatchNorm2d + ReLU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  autocast, enableGrad, FusedConv, fusedConvCalls, manualSeed, noGrad, profile, randn, setFusedInference, tidy, type Tensor,
} from '../../src/engine/index.js';
import { native } from '../../src/engine/native.js';
import { BatchNorm2d, Conv2d, ReLU, Sequential, type Module } from '../../src/nn/index.js';
import { createModel } from '../../src/models/index.js';

const available = native.fusedConvAvailable();

function randomiseStats(model: Module<never[], unknown>): void {
  noGrad(() => {
    for (const [k, b] of model.namedBuffers()) {
      if (k.endsWith('running_mean')) b.copy_(randn(b.shape).mul(0.2));
      if (k.endsWith('running_var')) b.copy_(randn(b.shape).abs().add(0.5));
    }
  });
}

/** The forward with the fused path off and on, as float32 copies. */
function bothWays(run: () => Tensor): [Tensor, Tensor] {
  const out: Tensor[] = [];
  for (const on of [false, true]) {
    const prev = setFusedInference(on);
    try {
      out.push(tidy(() => run().float().keep()));
    } finally {
      setFusedInference(prev);
    }
  }
  return [out[0], out[1]];
}

function relErr(ref: Tensor, got: Tensor): number {
  return tidy(() => got.sub(ref).abs().max().item() / Math.max(ref.abs().max().item(), 1e-12));
}

const MODELS: Array<[string, number]> = [
  ['resnet18', 64], ['resnet50', 64], ['mobilenet_v2', 64], ['efficientnet_b0', 64], ['inception_v3', 80], ['resnet20', 32],
  ['airbench_m', 32], ['googlenet', 64],
];

for (const [name, px] of MODELS) {
  test(`${name}: fused eval forward equals the op-by-op one (fp32 within 1e-4, bf16 within 3e-2)`, { skip: !available }, () => {
    manualSeed(1);
    const model = createModel(name, name === 'inception_v3' || name === 'googlenet' ? { auxLogits: false } : {});
    model.eval();
    randomiseStats(model);
    const x = randn([2, 3, px, px]);
    const convs = model.modules().filter((m) => m instanceof Conv2d).length;
    noGrad(() => {
      const before = fusedConvCalls();
      const [ref, got] = bothWays(() => model.call(x) as Tensor);
      // every convolution of these models sits in a chain: each runs fused, once
      assert.equal(fusedConvCalls() - before, convs);
      assert.ok(relErr(ref, got) < 1e-4, `fp32 relative error ${relErr(ref, got)}`);
      const [ref16, got16] = bothWays(() => autocast(() => model.call(x) as Tensor));
      assert.ok(relErr(ref, got16) < 3e-2, `bf16 fused against fp32: ${relErr(ref, got16)}`);
      assert.ok(relErr(ref, ref16) < 3e-2, `bf16 op by op against fp32: ${relErr(ref, ref16)}`);
    });
    model.dispose();
  });
}

test('a residual block leaves its input alone, and the fold follows in-place weight changes', { skip: !available }, () => {
  manualSeed(2);
  const model = createModel('resnet18');
  model.eval();
  randomiseStats(model);
  const x = randn([1, 3, 64, 64]);
  const copy = x.clone();
  noGrad(() => {
    const [ref, got] = bothWays(() => model.call(x) as Tensor);
    assert.ok(relErr(ref, got) < 1e-4);
    assert.equal(tidy(() => x.sub(copy).abs().max().item()), 0);
    // an optimizer step or a loaded state dict writes the tensors in place
    const modules = new Map(model.namedModules());
    const conv = modules.get('layer1.0.conv2') as Conv2d;
    const bn = modules.get('layer1.0.bn2') as BatchNorm2d;
    conv.weight.mul_(1.5);
    bn.buffer('running_var')!.mul_(0.5);
    const [ref2, got2] = bothWays(() => model.call(x) as Tensor);
    assert.ok(relErr(ref, ref2) > 1e-3, 'the change must change the output');
    assert.ok(relErr(ref2, got2) < 1e-4, `after the change: ${relErr(ref2, got2)}`);
  });
});

test('the fused path steps aside for training, autograd and hooks', { skip: !available }, () => {
  manualSeed(3);
  const block = new Sequential(new Conv2d(4, 8, 3, { padding: 1, bias: false }), new BatchNorm2d(8), new ReLU());
  block.eval();
  randomiseStats(block);
  const x = randn([2, 4, 9, 9]);
  // with autograd recording, the output carries history (the op-by-op path)
  const y = enableGrad(() => block.call(x.requiresGrad_(true)));
  assert.equal(y.requiresGrad, true);
  y.sum().backward();
  assert.ok(x.grad !== null);
  // a hook on the norm sees its call
  let seen = 0;
  const remove = (block.at(1) as Module).registerForwardHook(() => { seen++; });
  const before = fusedConvCalls();
  noGrad(() => tidy(() => { block.call(x); }));
  assert.equal(seen, 1);
  assert.equal(fusedConvCalls() - before, 1, 'the convolution runs fused alone; the watched norm runs on its own');
  remove();
  // in training mode the norm uses batch statistics: the fold would be wrong
  block.train();
  const [ref, got] = noGrad(() => bothWays(() => block.call(x)));
  assert.ok(relErr(ref, got) < 1e-6);
});

test('grouped, strided, dilated and asymmetric convolutions fold correctly', { skip: !available }, () => {
  manualSeed(4);
  for (const o of [{ groups: 4, stride: 2, padding: 1 }, { dilation: 2, padding: 2 }, { groups: 8, padding: [0, 1] as [number, number] }]) {
    const block = new Sequential(new Conv2d(8, 8, 3, o), new BatchNorm2d(8));
    block.eval();
    randomiseStats(block);
    const x = randn([3, 8, 11, 13]);
    const [ref, got] = noGrad(() => bothWays(() => block.call(x)));
    assert.deepEqual(got.shape, ref.shape);
    assert.ok(relErr(ref, got) < 1e-5, `${JSON.stringify(o)}: ${relErr(ref, got)}`);
  }
});

test('bad input to a fused convolution names what was expected', { skip: !available }, () => {
  const conv = new Conv2d(4, 8, 3);
  conv.eval();
  const fused = new FusedConv({ stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1], groups: 1, activation: 'relu', residual: true });
  const sources = { weight: conv.weight, bias: conv.bias, norm: null };
  assert.throws(() => noGrad(() => fused.run(randn([1, 3, 8, 8]), sources, randn([1, 8, 6, 6]))), /expected input with 4 channels/);
  assert.throws(() => noGrad(() => fused.run(randn([1, 4, 8, 8]), sources, randn([1, 8, 5, 5]))), /residual must have the output's shape \[1, 8, 6, 6\]/);
  assert.throws(() => noGrad(() => fused.run(randn([1, 4, 2, 2]), sources, randn([1, 8, 6, 6]))), /smaller than the kernel/);
  assert.throws(() => native.fusedConv({} as never, randn([1]).handle, randn([1]).handle, undefined, undefined, undefined, undefined, undefined, 0, undefined),
    /argument 0 must be a fused convolution state/);
  assert.throws(() => native.fusedConvCreate([1, 1], [0, 0, 0, 0], [1, 1], 1, 'mish', false), /relu, relu6, silu/);
});

// Training: a BatchNorm2d followed by a ReLU, or by a residual addition and a ReLU, in a chain
// runs as one batch norm with those in its passes (convkit::batch_norm_relu and
// batch_norm_add_relu in a profile); output, running statistics and gradients equal the modules
// run one after the other, and a hook on the ReLU turns it off.
async function opsIn<T>(fn: () => T): Promise<{ result: T; ops: Set<string> }> {
  const trace = join(tmpdir(), `convkit-fuse-${process.pid}.json`);
  try {
    const result = await profile(trace, fn);
    const parsed = JSON.parse(readFileSync(trace, 'utf8')) as { name: string }[] | { traceEvents: { name: string }[] };
    return { result, ops: new Set((Array.isArray(parsed) ? parsed : parsed.traceEvents).map((e) => e.name)) };
  } finally {
    rmSync(trace, { force: true });
  }
}

test('training: BatchNorm2d + ReLU run as one op, equal to the two modules, and step aside for hooks', async () => {
  const make = (): Sequential => {
    manualSeed(5);
    const s = new Sequential(new Conv2d(3, 16, 3, { padding: 1, bias: false }), new BatchNorm2d(16), new ReLU());
    s.to({ memoryFormat: 'channelsLast' });
    return s.train();
  };
  manualSeed(4);
  const x = randn([4, 3, 10, 10]).contiguous('channelsLast');
  const step = (s: Sequential, split: boolean): { y: Tensor; grad: Tensor; stats: Tensor[] } => tidy(() => {
    const [conv, bn, relu] = [0, 1, 2].map((i) => s.at(i) as Module<[Tensor], Tensor>);
    const y = split ? relu.call(bn.call(conv.call(x))) : s.call(x);
    y.mul(y).sum().backward();
    const w = (conv as Conv2d).weight;
    const out = { y: y.detach().keep(), grad: w.grad!.clone().keep(), stats: s.namedBuffers().map(([, b]) => b.clone().keep()) };
    w.grad = null;
    return out;
  });
  const fused = make();
  const { result: got, ops } = await opsIn(() => step(fused, false));
  assert.ok(ops.has('convkit::batch_norm_relu') && !ops.has('aten::relu'), `one fused op, got ${[...ops].join(', ')}`);
  const ref = step(make(), true);
  assert.ok(relErr(ref.y, got.y) < 1e-5, 'output');
  assert.ok(relErr(ref.grad, got.grad) < 1e-4, 'weight gradient');
  ref.stats.forEach((s, i) => assert.ok(relErr(s, got.stats[i]) < 1e-6, `buffer ${i}`));
  let seen = 0;
  (fused.at(2) as Module).registerForwardHook(() => { seen++; });
  const watched = await opsIn(() => step(fused, false));
  assert.equal(seen, 1);
  assert.ok(watched.ops.has('convkit::batch_norm') && !watched.ops.has('convkit::batch_norm_relu'), 'a watched ReLU runs on its own');
});

test('training: a residual block runs its norms fused, equal to the block run op by op', async () => {
  const make = (): Module<[Tensor], Tensor> => {
    manualSeed(6);
    const m = (createModel('resnet20', { numClasses: 10, inChannels: 1 }) as unknown as { layer2: Sequential }).layer2.at(0) as Module<[Tensor], Tensor>;
    m.to({ memoryFormat: 'channelsLast' });
    return m.train();
  };
  manualSeed(7);
  const x = randn([4, 16, 8, 8]).contiguous('channelsLast');
  const step = (m: Module<[Tensor], Tensor>, split: boolean): { y: Tensor; grads: Tensor[]; xg: Tensor } => tidy(() => {
    const xi = x.detach().requiresGrad_();
    const b = m as unknown as Record<string, Module<[Tensor], Tensor>>;
    const y = split
      ? b.relu.call(b.bn2.call(b.conv2.call(b.relu.call(b.bn1.call(b.conv1.call(xi))))).add(b.downsample.call(xi)))
      : m.call(xi);
    y.mul(y).sum().backward();
    return { y: y.detach().keep(), grads: m.parameters().map((p) => p.grad!.clone().keep()), xg: xi.grad!.keep() };
  });
  const fused = make();
  const { result: got, ops } = await opsIn(() => step(fused, false));
  assert.ok(ops.has('convkit::batch_norm_relu') && ops.has('convkit::batch_norm_add_relu') && !ops.has('aten::relu'), `fused ops, got ${[...ops].join(', ')}`);
  const ref = step(make(), true);
  assert.ok(relErr(ref.y, got.y) < 1e-5, 'output');
  assert.ok(relErr(ref.xg, got.xg) < 1e-4, 'input gradient (through both branches)');
  ref.grads.forEach((g, i) => assert.ok(relErr(g, got.grads[i]) < 1e-4, `parameter gradient ${i}`));
});
