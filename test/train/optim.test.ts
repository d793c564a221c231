// The optimizers against torch.optim (foreach path) and a Python RMSpropTF reference: the same
// start, the same 10 gradient sequences, the same parameters after 10 steps; with param groups,
// decay groups, skipped parameters, gradient clipping, and a real model trained on real
// gradients. Then checkpoints (stateDict round trips, through safetensors too) and errors.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { F, Tensor, manualSeed, noGrad, randint, randn, tensor, tidy } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/nn/index.js';
import { readSafetensors, writeSafetensors } from '../../src/io/index.js';
import { Adam, AdamW, Optimizer, RMSprop, SGD, type AdamOptions, type GroupOptions, type OptimizerState, type RMSpropOptions, type SGDOptions } from '../../src/train/optim/index.js';
import { clipGradNorm, clipGradValue } from '../../src/train/clip.js';
import { paramGroupsWithDecay } from '../../src/train/param_groups.js';
import { OracleBatch, assertClose, assertEqualTensor } from '../helpers/oracle.js';

const K = 10;
const TOL = { rtol: 1e-5, atol: 1e-6 };

// conv.weight, conv.bias, bn.weight, bn.bias, fc.weight, fc.bias
const makeModel = (): Sequential =>
  new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 5));
const NP = 6;
// parameter 5 has no gradient for the first 3 steps, parameter 1 none at step 6: both are skipped then
const hasGrad = (k: number, i: number): boolean => !((i === 5 && k < 3) || (i === 1 && k === 6));

let initial: Map<string, Tensor>;
let grads: (Tensor | null)[][];

type AnyOptimizer = Optimizer<GroupOptions>;
interface ClipSpec { maxNorm?: number; normType?: number; value?: number }
interface Case {
  name: string;
  py: string;
  js: (m: Sequential) => AnyOptimizer;
  clip?: ClipSpec;
}

const ps = (m: Sequential): Tensor[] => m.parameters();
const CASES: Case[] = [
  { name: 'sgd', py: 'torch.optim.SGD(ps, lr=0.1)', js: (m) => new SGD(ps(m), { lr: 0.1 }) },
  {
    name: 'sgd_momentum_dampening_wd', py: 'torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)',
    js: (m) => new SGD(ps(m), { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-2 }),
  },
  {
    name: 'sgd_nesterov', py: 'torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)',
    js: (m) => new SGD(ps(m), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }),
  },
  {
    name: 'sgd_maximize', py: 'torch.optim.SGD(ps, lr=0.01, momentum=0.5, maximize=True)',
    js: (m) => new SGD(ps(m), { lr: 0.01, momentum: 0.5, maximize: true }),
  },
  {
    name: 'sgd_groups',
    py: "torch.optim.SGD([{'params': ps[:2], 'lr': 0.2}, {'params': ps[2:4], 'weight_decay': 0}, {'params': ps[4:], 'momentum': 0.5, 'nesterov': True}], lr=0.05, momentum=0.9, weight_decay=1e-3)",
    js: (m) => {
      const p = ps(m);
      return new SGD([{ params: p.slice(0, 2), lr: 0.2 }, { params: p.slice(2, 4), weightDecay: 0 }, { params: p.slice(4), momentum: 0.5, nesterov: true }],
        { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
    },
  },
  { name: 'adam', py: 'torch.optim.Adam(ps, lr=1e-2)', js: (m) => new Adam(ps(m), { lr: 1e-2 }) },
  {
    name: 'adam_wd_amsgrad', py: 'torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True)',
    js: (m) => new Adam(ps(m), { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 1e-2, amsgrad: true }),
  },
  { name: 'adam_maximize', py: 'torch.optim.Adam(ps, lr=1e-3, maximize=True)', js: (m) => new Adam(ps(m), { lr: 1e-3, maximize: true }) },
  { name: 'adamw', py: 'torch.optim.AdamW(ps, lr=1e-2)', js: (m) => new AdamW(ps(m), { lr: 1e-2 }) },
  {
    name: 'adamw_amsgrad_groups',
    py: "torch.optim.AdamW([{'params': ps[:3]}, {'params': ps[3:], 'lr': 3e-3, 'weight_decay': 0}], lr=1e-2, weight_decay=0.1, amsgrad=True)",
    js: (m) => new AdamW([{ params: ps(m).slice(0, 3) }, { params: ps(m).slice(3), lr: 3e-3, weightDecay: 0 }], { lr: 1e-2, weightDecay: 0.1, amsgrad: true }),
  },
  {
    // timm's param_groups_weight_decay: ndim <= 1 (biases, norm weights) undecayed
    name: 'adamw_decay_groups',
    py: "torch.optim.AdamW([{'params': [ps[i] for i in (1, 2, 3, 5)], 'weight_decay': 0.}, {'params': [ps[0], ps[4]], 'weight_decay': 0.05}], lr=5e-3)",
    js: (m) => new AdamW(paramGroupsWithDecay(m, 0.05), { lr: 5e-3 }),
  },
  { name: 'rmsprop', py: 'torch.optim.RMSprop(ps, lr=1e-2)', js: (m) => new RMSprop(ps(m), { lr: 1e-2 }) },
  {
    name: 'rmsprop_centered_momentum_wd', py: 'torch.optim.RMSprop(ps, lr=1e-2, alpha=0.9, eps=1e-6, momentum=0.9, centered=True, weight_decay=1e-3)',
    js: (m) => new RMSprop(ps(m), { lr: 1e-2, alpha: 0.9, eps: 1e-6, momentum: 0.9, centered: true, weightDecay: 1e-3 }),
  },
  {
    name: 'rmsprop_maximize_centered', py: 'torch.optim.RMSprop(ps, lr=1e-3, centered=True, maximize=True)',
    js: (m) => new RMSprop(ps(m), { lr: 1e-3, centered: true, maximize: true }),
  },
  {
    name: 'rmsprop_tf', py: 'RMSpropTF(ps, lr=1e-2, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-5)',
    js: (m) => new RMSprop(ps(m), { tfStyle: true, lr: 1e-2, alpha: 0.9, eps: 1e-3, momentum: 0.9, weightDecay: 1e-5 }),
  },
  {
    name: 'rmsprop_tf_centered_defaults', py: 'RMSpropTF(ps, lr=1e-3, centered=True)',
    js: (m) => new RMSprop(ps(m), { tfStyle: true, lr: 1e-3, centered: true }),
  },
  {
    name: 'rmsprop_tf_decoupled_lr_outside',
    py: 'RMSpropTF(ps, lr=1e-2, momentum=0.9, weight_decay=1e-2, decoupled_decay=True, lr_in_momentum=False, centered=True)',
    js: (m) => new RMSprop(ps(m), { tfStyle: true, lr: 1e-2, momentum: 0.9, weightDecay: 1e-2, decoupledDecay: true, lrInMomentum: false, centered: true }),
  },
  {
    name: 'clip_norm2_sgd', clip: { maxNorm: 1.0 }, py: 'torch.optim.SGD(ps, lr=0.1, momentum=0.9)',
    js: (m) => new SGD(ps(m), { lr: 0.1, momentum: 0.9 }),
  },
  { name: 'clip_norm_inf_adam', clip: { maxNorm: 0.5, normType: Infinity }, py: 'torch.optim.Adam(ps, lr=1e-2)', js: (m) => new Adam(ps(m), { lr: 1e-2 }) },
  { name: 'clip_norm1_sgd', clip: { maxNorm: 2, normType: 1 }, py: 'torch.optim.SGD(ps, lr=0.1)', js: (m) => new SGD(ps(m), { lr: 0.1 }) },
  { name: 'clip_norm_large_sgd', clip: { maxNorm: 1e3 }, py: 'torch.optim.SGD(ps, lr=0.1)', js: (m) => new SGD(ps(m), { lr: 0.1 }) },
  { name: 'clip_value_sgd', clip: { value: 0.5 }, py: 'torch.optim.SGD(ps, lr=0.1)', js: (m) => new SGD(ps(m), { lr: 0.1 }) },
];

// Python: the reference RMSpropTF (timm's algorithm: eps inside the sqrt, square_avg from ones,
// lr in the momentum), then every case from the same start and gradients.
const PY_SYNTHETIC = String.raw`
import json
torch.set_num_threads(2)

class RMSpropTF(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.9, eps=1e-10, weight_decay=0, momentum=0., centered=False,
                 decoupled_decay=False, lr_in_momentum=True):
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, decoupled_decay=decoupled_decay, lr_in_momentum=lr_in_momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['square_avg'] = torch.ones_like(p)
                    if group['momentum'] > 0:
                        state['momentum_buffer'] = torch.zeros_like(p)
                    if group['centered']:
                        state['grad_avg'] = torch.zeros_like(p)
                square_avg = state['square_avg']
                one_minus_alpha = 1. - group['alpha']
                state['step'] += 1
                if group['weight_decay'] != 0:
                    if group['decoupled_decay']:
                        p.mul_(1. - group['lr'] * group['weight_decay'])
                    else:
                        grad = grad.add(p, alpha=group['weight_decay'])
                square_avg.add_(grad.pow(2) - square_avg, alpha=one_minus_alpha)
                if group['centered']:
                    grad_avg = state['grad_avg']
                    grad_avg.add_(grad - grad_avg, alpha=one_minus_alpha)
                    avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).add(group['eps']).sqrt_()
                else:
                    avg = square_avg.add(group['eps']).sqrt_()
                if group['momentum'] > 0:
                    buf = state['momentum_buffer']
                    buf.mul_(group['momentum'])
                    if group['lr_in_momentum']:
                        buf.addcdiv_(grad, avg, value=group['lr'])
                        p.add_(-buf)
                    else:
                        buf.addcdiv_(grad, avg)
                        p.add_(buf, alpha=-group['lr'])
                else:
                    p.addcdiv_(grad, avg, value=-group['lr'])

CASES = json.loads(__CASES__)
K, NP = __K__, __NP__
for c in CASES:
    ps = [I['p%d' % i].clone().requires_grad_(True) for i in range(NP)]
    ctor = c['py']
    if ctor.startswith('torch.optim.') and 'foreach' not in ctor:
        ctor = ctor[:-1] + ', foreach=True)'
    opt = eval(ctor)
    norms = []
    for k in range(K):
        for i, p in enumerate(ps):
            key = 'g%d_%d' % (k, i)
            p.grad = I[key].clone() if key in I else None
        clip = c.get('clip')
        if clip and 'value' in clip:
            torch.nn.utils.clip_grad_value_(ps, clip['value'])
        elif clip:
            nt = clip.get('normType', 2.0)
            norms.append(torch.nn.utils.clip_grad_norm_(ps, clip['maxNorm'], float('inf') if nt == 'inf' else nt))
        opt.step()
    for i, p in enumerate(ps):
        O['%s.p%d' % (c['name'], i)] = p.detach()
    if norms:
        O[c['name'] + '.norms'] = torch.stack(norms)
`;

// A real model trained on real gradients: 10 steps of cross entropy on fixed batches.
const PY_REAL = String.raw`
torch.set_num_threads(2)
def build():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    m.load_state_dict({k[2:]: v for k, v in I.items() if k.startswith('m.')})
    return m
for name in ('sgd', 'adamw'):
    m = build()
    ps = list(m.parameters())
    if name == 'sgd':
        opt = torch.optim.SGD([{'params': [ps[i] for i in (1, 2, 3, 5)], 'weight_decay': 0.}, {'params': [ps[0], ps[4]], 'weight_decay': 1e-2}],
                              lr=0.1, momentum=0.9, nesterov=True, foreach=True)
    else:
        opt = torch.optim.AdamW(ps, lr=1e-2, foreach=True)
    for k in range(__K__):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(I['x%d' % k]), I['y%d' % k])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, 2.0)
        opt.step()
    for key, v in m.state_dict().items():
        O[name + '.' + key] = v
`;

const batch = new OracleBatch();
let synthKey = -1;
let realKey = -1;
let realInputs: Record<string, Tensor>;

function freshModel(): Sequential {
  const m = makeModel();
  m.loadStateDict(initial);
  return m;
}

function setGrads(m: Sequential, k: number): void {
  m.parameters().forEach((p, i) => { p.grad = grads[k][i] ? grads[k][i]!.clone() : null; });
}

function runCase(c: Case, m: Sequential, opt: AnyOptimizer, from: number, to: number, norms?: number[]): void {
  for (let k = from; k < to; k++) {
    tidy(() => {
      setGrads(m, k);
      if (c.clip?.value !== undefined) clipGradValue(m.parameters(), c.clip.value);
      else if (c.clip) norms?.push(clipGradNorm(m.parameters(), c.clip.maxNorm!, c.clip.normType ?? 2).item());
      opt.step();
    });
  }
}

before(async () => {
  manualSeed(7);
  const m = makeModel();
  initial = new Map([...m.stateDict()].map(([k, t]) => [k, noGrad(() => t.clone()).keep()]));
  grads = Array.from({ length: K }, (_, k) => m.parameters().map((p, i) => (hasGrad(k, i) ? randn(p.shape).mul(0.5 + k / 10).keep() : null)));
  const inputs: Record<string, Tensor> = {};
  m.parameters().forEach((p, i) => { inputs[`p${i}`] = p; });
  grads.forEach((row, k) => row.forEach((g, i) => { if (g) inputs[`g${k}_${i}`] = g; }));
  const spec = CASES.map((c) => ({ name: c.name, py: c.py, clip: c.clip && { ...c.clip, normType: c.clip.normType === Infinity ? 'inf' : c.clip.normType } }));
  synthKey = batch.add(PY_SYNTHETIC.replace('__CASES__', JSON.stringify(JSON.stringify(spec))).replace('__K__', String(K)).replace('__NP__', String(NP)), inputs, 'synthetic');
  realInputs = {};
  for (const [k, t] of initial) realInputs[`m.${k}`] = t;
  for (let k = 0; k < K; k++) {
    realInputs[`x${k}`] = randn([8, 3, 6, 6]).keep();
    realInputs[`y${k}`] = randint(0, 5, [8]).keep();
  }
  realKey = batch.add(PY_REAL.replace('__K__', String(K)), realInputs, 'real');
  m.dispose();
  await batch.run();
});

after(() => {
  for (const t of initial.values()) t.dispose();
  for (const row of grads) for (const g of row) g?.dispose();
  for (const [k, t] of Object.entries(realInputs)) if (!k.startsWith('m.')) t.dispose();
});

describe('against torch.optim after 10 steps', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const ref = batch.get(synthKey);
      const m = freshModel();
      const opt = c.js(m);
      const norms: number[] = [];
      runCase(c, m, opt, 0, K, norms);
      m.parameters().forEach((p, i) => assertClose(p, ref[`${c.name}.p${i}`], TOL, `${c.name}: parameter ${i}`));
      if (norms.length) tidy(() => assertClose(tensor(norms, { dtype: 'float32' }), ref[`${c.name}.norms`], { rtol: 1e-5, atol: 0 }, `${c.name}: total norms`));
      opt.dispose();
      m.dispose();
    });
  }

  test('a real model on real gradients (SGD Nesterov with decay groups, AdamW, clipping)', () => {
    const ref = batch.get(realKey);
    for (const name of ['sgd', 'adamw']) {
      const m = freshModel();
      const opt = name === 'sgd'
        ? new SGD(paramGroupsWithDecay(m, 1e-2), { lr: 0.1, momentum: 0.9, nesterov: true })
        : new AdamW(m.parameters(), { lr: 1e-2 });
      for (let k = 0; k < K; k++) {
        tidy(() => {
          opt.zeroGrad();
          F.crossEntropy(m.call(realInputs[`x${k}`]), realInputs[`y${k}`]).backward();
          clipGradNorm(m.parameters(), 2.0);
          opt.step();
        });
      }
      for (const [key, t] of m.stateDict()) assertClose(t, ref[`${name}.${key}`], { rtol: 1e-4, atol: 1e-5 }, `${name}: ${key}`);
      opt.dispose();
      m.dispose();
    }
  });
});

// ---- checkpoints ----------------------------------------------------------------------------------

/** A checkpoint as the writer would store it: tensor copies, and meta through JSON. */
function snapshot(s: OptimizerState): OptimizerState {
  const tensors = new Map([...s.tensors].map(([k, t]) => [k, noGrad(() => t.clone())]));
  return { tensors, meta: JSON.parse(JSON.stringify(s.meta)) };
}

describe('stateDict round trip: 5 steps, save, a fresh optimizer loads, 5 more = 10 straight', () => {
  const roundTrip = ['sgd_nesterov', 'sgd_groups', 'adam_wd_amsgrad', 'adamw_amsgrad_groups', 'rmsprop_centered_momentum_wd', 'rmsprop_tf', 'clip_norm2_sgd'];
  for (const name of roundTrip) {
    test(name, () => {
      const c = CASES.find((x) => x.name === name)!;
      const a = freshModel();
      const optA = c.js(a);
      runCase(c, a, optA, 0, K);

      const b = freshModel();
      const first = c.js(b);
      runCase(c, b, first, 0, 5);
      first.paramGroups[0].lr *= 0.5; // a schedule's change travels with the checkpoint
      const saved = snapshot(first.stateDict());
      first.dispose();
      const second = c.js(b);
      second.loadStateDict(saved);
      for (const t of saved.tensors.values()) t.dispose();
      assert.equal(second.paramGroups[0].lr, first.paramGroups[0].lr);
      second.paramGroups[0].lr *= 2; // back to A's lr, so both runs must agree exactly
      runCase(c, b, second, 5, K);
      b.parameters().forEach((p, i) => assertEqualTensor(p, a.parameters()[i], `${name}: parameter ${i}`));
      assert.deepEqual(second.stateDict().meta, optA.stateDict().meta);
      for (const [k, t] of second.stateDict().tensors) assertEqualTensor(t, optA.stateDict().tensors.get(k)!, `${name}: ${k}`);
      for (const x of [optA, second, a, b]) x.dispose();
    });
  }

  test('through a safetensors file and JSON, as the checkpoint writer stores it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convkit-optim-'));
    try {
      const c = CASES.find((x) => x.name === 'adam_wd_amsgrad')!;
      const a = freshModel();
      const optA = c.js(a);
      runCase(c, a, optA, 0, K);
      const b = freshModel();
      const first = c.js(b);
      runCase(c, b, first, 0, 5);
      const s = first.stateDict();
      writeSafetensors(join(dir, 'optim.safetensors'), s.tensors);
      const meta = JSON.stringify(s.meta);
      first.dispose();
      const second = c.js(b);
      const tensors = readSafetensors(join(dir, 'optim.safetensors'));
      second.loadStateDict({ tensors, meta: JSON.parse(meta) });
      for (const t of tensors.values()) t.dispose();
      runCase(c, b, second, 5, K);
      b.parameters().forEach((p, i) => assertEqualTensor(p, a.parameters()[i], `parameter ${i}`));
      for (const x of [optA, second, a, b]) x.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('keys follow torch: state.<index over all groups>.<name>, step counts per parameter', () => {
    const c = CASES.find((x) => x.name === 'adamw_amsgrad_groups')!;
    const m = freshModel();
    const opt = c.js(m);
    runCase(c, m, opt, 0, 4);
    const s = opt.stateDict();
    assert.deepEqual(s.meta.paramGroups.map((g) => g.params), [[0, 1, 2], [3, 4, 5]]);
    assert.deepEqual([...s.tensors.keys()].filter((k) => k.startsWith('state.5.')), ['state.5.exp_avg', 'state.5.exp_avg_sq', 'state.5.max_exp_avg_sq']);
    assert.deepEqual(s.meta.state['5'], { step: 1 }); // no gradient in steps 0-2
    assert.deepEqual(s.meta.state['0'], { step: 4 });
    assert.equal(s.meta.paramGroups[1].lr, 3e-3);
    assert.equal(s.meta.paramGroups[1].weightDecay, 0);
    assert.deepEqual(s.meta.paramGroups[0].betas, [0.9, 0.999]);
    assert.equal(s.meta.optimizer, 'AdamW');
    opt.dispose();
    m.dispose();
  });
});

describe('loadStateDict names what does not fit', () => {
  const adamState = (): { m: Sequential; opt: Adam; s: OptimizerState } => {
    const m = freshModel();
    const opt = new Adam(m.parameters(), { lr: 1e-2, amsgrad: true });
    runCase(CASES[0], m, opt, 0, 4);
    return { m, opt, s: snapshot(opt.stateDict()) };
  };
  const expectError = (fn: () => void, ...patterns: RegExp[]): void => {
    assert.throws(fn, (e: Error) => {
      for (const p of patterns) assert.match(e.message, p);
      return true;
    });
  };

  test('another optimizer, other group and parameter counts', () => {
    const { m, opt, s } = adamState();
    expectError(() => new SGD(m.parameters(), { lr: 0.1 }).loadStateDict(s), /SGD\.loadStateDict/, /state of Adam, this optimizer is SGD/);
    const p = m.parameters();
    expectError(() => new Adam([{ params: p.slice(0, 3) }, { params: p.slice(3) }]).loadStateDict(s), /2 param groups, this optimizer has 1|1 param groups, this optimizer has 2/);
    expectError(() => new Adam(p.slice(0, 4)).loadStateDict(s), /param group 0 has 6 parameters in the state, 4 here/);
    const badLr = { tensors: s.tensors, meta: structuredClone(s.meta) };
    badLr.meta.paramGroups[0].lr = -1;
    expectError(() => opt.loadStateDict(badLr), /param group 0 of the state: lr must be a number >= 0, got -1/);
    opt.dispose();
    m.dispose();
  });

  test('tensor shapes, unknown and missing state, and nothing changes on failure', () => {
    const { m, opt, s } = adamState();
    const before = snapshot(opt.stateDict());
    const bad = { tensors: new Map(s.tensors), meta: structuredClone(s.meta) };
    bad.tensors.set('state.0.exp_avg', randn([2, 2]));
    bad.tensors.set('state.1.momentum_buffer', randn([4]));
    bad.tensors.delete('state.2.exp_avg_sq');
    bad.tensors.set('something', randn([1]));
    expectError(() => opt.loadStateDict(bad), /unexpected tensor 'something'/, /'state\.1\.momentum_buffer': Adam has no state 'momentum_buffer'/);
    bad.tensors.delete('something');
    bad.tensors.delete('state.1.momentum_buffer');
    expectError(() => opt.loadStateDict(bad), /'state\.0\.exp_avg' has shape \[2, 2\], parameter 0 has shape \[4, 3, 3, 3\]/, /parameter 2 has a step count but no 'state\.2\.exp_avg_sq'/);
    for (const [k, t] of opt.stateDict().tensors) assertEqualTensor(t, before.tensors.get(k)!, `unchanged ${k}`);
    expectError(() => opt.loadStateDict({ tensors: {} } as unknown as OptimizerState), /expected \{tensors, meta/);
    opt.dispose();
    m.dispose();
  });
});

// ---- behaviour ------------------------------------------------------------------------------------

// torch.optim's single-tensor arithmetic, op by op, on one parameter: what the one-pass native
// updates must reproduce bit for bit.
type ByOps = (p: Tensor, grads: Tensor[]) => Tensor;
function sgdByOps(o: SGDOptions): ByOps {
  return (p, grads) => {
    const m = o.momentum ?? 0;
    let buf: Tensor | undefined;
    for (const g of grads) {
      let d = (o.maximize ? g.neg() : g).add(p, o.weightDecay ?? 0);
      if (m !== 0) {
        buf = buf ? buf.mul_(m).add_(d, 1 - (o.dampening ?? 0)) : d.clone();
        d = o.nesterov ? d.add(buf, m) : buf;
      }
      p.add_(d, -o.lr);
    }
    return p;
  };
}
function adamByOps(o: Required<AdamOptions>, decoupled: boolean): ByOps {
  return (p, grads) => {
    const [b1, b2] = o.betas;
    const m = p.mul(0), v = p.mul(0), vmax = p.mul(0);
    grads.forEach((g, k) => {
      let d = o.maximize ? g.neg() : g;
      if (decoupled) p.mul_(1 - o.lr * o.weightDecay);
      else d = d.add(p, o.weightDecay);
      m.mul_(b1).add_(d, 1 - b1);
      v.mul_(b2);
      F.foreach.addcmul_([v], [d], [d], 1 - b2);
      const second = o.amsgrad ? vmax.copy_(vmax.maximum(v)) : v;
      const denom = second.sqrt().div(Math.sqrt(1 - b2 ** (k + 1))).add(o.eps);
      F.foreach.addcdivScalarList_([p], [m], [denom], [-o.lr / (1 - b1 ** (k + 1))]);
    });
    return p;
  };
}
function rmspropByOps(o: Required<RMSpropOptions>): ByOps {
  return (p, grads) => {
    const s = p.mul(0).add(o.tfStyle ? 1 : 0), ga = p.mul(0), buf = p.mul(0);
    const [gaL, sL, pL, bufL] = [[ga], [s], [p], [buf]];
    for (const g of grads) {
      let d = o.maximize ? g.neg() : g;
      if (o.weightDecay !== 0) {
        if (o.decoupledDecay) p.mul_(1 - o.lr * o.weightDecay);
        else d = d.add(p, o.weightDecay);
      }
      let avg: Tensor;
      if (o.tfStyle) {
        s.add_(d.mul(d).sub(s), 1 - o.alpha);
        if (o.centered) ga.add_(d.sub(ga), 1 - o.alpha);
        avg = (o.centered ? F.foreach.addcmul(sL, gaL, gaL, -1)[0] : s).add(o.eps).sqrt();
      } else {
        s.mul_(o.alpha);
        F.foreach.addcmul_(sL, [d], [d], 1 - o.alpha);
        if (o.centered) ga.mul_(o.alpha).add_(d, 1 - o.alpha);
        avg = (o.centered ? F.foreach.addcmul(sL, gaL, gaL, -1)[0].sqrt() : s.sqrt()).add(o.eps);
      }
      if (o.momentum > 0) {
        buf.mul_(o.momentum);
        F.foreach.addcdiv_(bufL, [d], [avg], o.lrInMomentum ? o.lr : 1);
        p.add_(buf, o.lrInMomentum ? -1 : -o.lr);
      } else {
        F.foreach.addcdiv_(pL, [d], [avg], -o.lr);
      }
    }
    return p;
  };
}
const RMS = { lr: 0.01, alpha: 0.99, eps: 1e-8, weightDecay: 1e-2, momentum: 0, centered: false, maximize: false, tfStyle: false, decoupledDecay: false, lrInMomentum: false };
const ADAM = { lr: 0.01, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false };
const ONE_PASS: { name: string; make: (p: Tensor) => AnyOptimizer; byOps: ByOps }[] = [
  ...[
    { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-2, maximize: true },
    { lr: 0.1 },
  ].map((o) => ({ name: `SGD ${JSON.stringify(o)}`, make: (p: Tensor) => new SGD([p], o), byOps: sgdByOps(o) })),
  ...[ADAM, { ...ADAM, amsgrad: true, maximize: true }, { ...ADAM, weightDecay: 0, eps: 1e-3 }].flatMap((o) => [
    { name: `Adam ${JSON.stringify(o)}`, make: (p: Tensor) => new Adam([p], o), byOps: adamByOps(o, false) },
    { name: `AdamW ${JSON.stringify(o)}`, make: (p: Tensor) => new AdamW([p], o), byOps: adamByOps(o, true) },
  ]),
  ...[
    RMS, { ...RMS, momentum: 0.9, centered: true, maximize: true },
    { ...RMS, tfStyle: true, alpha: 0.9, eps: 1e-3, momentum: 0.9, lrInMomentum: true, decoupledDecay: true },
    { ...RMS, tfStyle: true, alpha: 0.9, eps: 1e-3, centered: true, weightDecay: 0 },
  ].map((o) => ({ name: `RMSprop ${JSON.stringify(o)}`, make: (p: Tensor) => new RMSprop([p], o), byOps: rmspropByOps(o) })),
];

describe('optimizer behaviour', () => {
  test('step leaves the gradients as they were (decay, Nesterov and maximize work on copies)', () => {
    for (const name of ['sgd_nesterov', 'adam_wd_amsgrad', 'rmsprop_centered_momentum_wd', 'sgd_maximize']) {
      const c = CASES.find((x) => x.name === name)!;
      const m = freshModel();
      const opt = c.js(m);
      tidy(() => {
        setGrads(m, 4);
        opt.step();
        opt.step();
        m.parameters().forEach((p, i) => assertEqualTensor(p.grad!, grads[4][i]!, `${name}: grad ${i}`));
      });
      opt.dispose();
      m.dispose();
    }
  });

  test("the one-pass updates: torch.optim's bits in any layout, libtorch ops in float64", () => {
    for (const c of ONE_PASS) tidy(() => {
      const start = randn([8, 4, 3, 3]);
      const gs = [0, 1, 2].map(() => randn([8, 4, 3, 3]));
      const run = (p: Tensor, grad: (g: Tensor) => Tensor): Tensor => {
        p.requiresGrad_(true);
        const opt = c.make(p);
        for (const g of gs) { p.grad = grad(g); opt.step(); }
        opt.dispose();
        return p.detach().to('float32').contiguous();
      };
      const fast = run(start.clone(), (g) => g);
      assertEqualTensor(fast, noGrad(() => c.byOps(start.clone(), gs)), `${c.name}: float32`);
      // a resumed run, whose state comes back contiguous, matches an uninterrupted one bit for bit
      assertEqualTensor(run(start.contiguous('channelsLast'), (g) => g), fast, `${c.name}: channels-last parameter`);
      assertClose(run(start.to('float64'), (g) => g.to('float64')), fast, { rtol: 1e-6, atol: 1e-7 }, `${c.name}: float64`);
      assert.ok(fast.sub(start).abs().max().item() > 1e-3, `${c.name}: the parameter moved`);
    });
  });

  test('the one-pass updates refuse mismatched lists and shapes, naming the parameter, and change nothing', () => tidy(() => {
    const p = randn([4, 3]), q = randn([5]), g = randn([4, 3]);
    const before = p.clone();
    const sgd = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, init: false };
    assert.throws(() => F.foreach.sgdStep_([p, q], [g], [], sgd), /sgdStep_: 2 parameters but 1 gradients/);
    assert.throws(() => F.foreach.sgdStep_([p], [randn([3, 4])], [], sgd), /sgdStep_: parameter 0 has shape \[4, 3\] but its gradient \[3, 4\]/);
    // a float64 parameter takes the ops path at once: it must not move when a later one is refused
    const wide = randn([5]).to('float64'), wideBefore = wide.clone();
    assert.throws(() => F.foreach.sgdStep_([wide, p], [randn([5]).to('float64'), g], [randn([5]).to('float64'), randn([2])], sgd),
      /parameter 1 has shape \[4, 3\] but its state \[2\]/);
    assertEqualTensor(wide, wideBefore, 'the float64 parameter after the refused call');
    const adam = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, maximize: false, stepSizes: [-0.1], bc2Sqrts: [] };
    assert.throws(() => F.foreach.adamStep_([p], [g], { expAvgs: [randn([4, 3])], expAvgSqs: [randn([4, 3])], maxExpAvgSqs: [] }, adam),
      /adamStep_: 1 parameters but 1 step sizes and 0 bias corrections/);
    assertEqualTensor(p, before, 'the parameter after the refused calls');
  }));

  test('state tensors are made once and reused; zeroGrad clears to null or to zeros', () => {
    const m = freshModel();
    const opt = new Adam(m.parameters());
    tidy(() => { setGrads(m, 4); opt.step(); });
    const first = opt.stateDict().tensors;
    tidy(() => { setGrads(m, 5); opt.step(); });
    const second = opt.stateDict().tensors;
    for (const k of first.keys()) assert.equal(first.get(k), second.get(k), `${k} is the same tensor`);
    opt.zeroGrad(false);
    for (const p of m.parameters()) tidy(() => assert.equal(p.grad!.abs().max().item(), 0));
    opt.zeroGrad();
    for (const p of m.parameters()) assert.equal(p.grad, null);
    opt.dispose();
    m.dispose();
  });

  test('loading its own live stateDict changes nothing', () => {
    const c = CASES.find((x) => x.name === 'adam_wd_amsgrad')!;
    const a = freshModel();
    const optA = c.js(a);
    runCase(c, a, optA, 0, K);
    const b = freshModel();
    const optB = c.js(b);
    runCase(c, b, optB, 0, 5);
    optB.loadStateDict(optB.stateDict());
    runCase(c, b, optB, 5, K);
    b.parameters().forEach((p, i) => assertEqualTensor(p, a.parameters()[i], `parameter ${i}`));
    for (const x of [optA, optB, a, b]) x.dispose();
  });

  test('bad construction is refused with the reason', () => {
    const m = freshModel();
    const p = m.parameters();
    assert.throws(() => new SGD([], { lr: 0.1 }), /SGD: got an empty parameter list/);
    assert.throws(() => new SGD([{ params: p }, { params: [p[0]] }], { lr: 0.1 }), /SGD param group 1: params\[0\] is already in another param group/);
    assert.throws(() => new SGD(p, { lr: 0.1, nesterov: true }), /Nesterov momentum requires momentum > 0/);
    assert.throws(() => new Adam(p, { betas: [0.9, 1.5] }), /betas\[1\] must be in \[0, 1\)/);
    assert.throws(() => new RMSprop(p, { lr: -1 }), /RMSprop param group 0: lr must be a number >= 0/);
    assert.throws(() => new SGD(p, {} as { lr: number }), /SGD: options\.lr is required/);
    tidy(() => assert.throws(() => new SGD([p[0].mul(2)], { lr: 0.1 }), /not a leaf tensor/));
    const opt = new RMSprop(p, { tfStyle: true });
    assert.equal(opt.paramGroups[0].alpha, 0.9);
    assert.equal(opt.paramGroups[0].eps, 1e-10);
    assert.equal(opt.paramGroups[0].lrInMomentum, true);
    m.dispose();
  });

  test('paramGroupsWithDecay: ndim <= 1, biases and the skip list are not decayed', () => {
    const m = freshModel();
    const [no, yes] = paramGroupsWithDecay(m, 0.05, { skipList: ['5.weight'] });
    const names = new Map(m.namedParameters().map(([n, p]) => [p as Tensor, n]));
    assert.deepEqual(no.params.map((p) => names.get(p)), ['0.bias', '1.weight', '1.bias', '5.weight', '5.bias']);
    assert.deepEqual(yes.params.map((p) => names.get(p)), ['0.weight']);
    assert.equal(no.weightDecay, 0);
    assert.equal(yes.weightDecay, 0.05);
    m.dispose();
  });

  test('clipGradNorm with no gradients returns 0; clipGradValue clamps', () => {
    const m = freshModel();
    const z = clipGradNorm(m.parameters(), 1);
    assert.equal(z.item(), 0);
    assert.equal(z.dtype, 'float32');
    z.dispose();
    tidy(() => {
      setGrads(m, 4);
      clipGradValue(m.parameters(), 0.1);
      for (const p of m.parameters()) assert.ok(p.grad!.abs().max().item() <= 0.1 + 1e-7);
      p0NaN(m);
      assert.throws(() => clipGradNorm(m.parameters(), 1, 2, { errorIfNonfinite: true }), /total norm of order 2 of the gradients is NaN/);
    });
    m.dispose();
  });
});

function p0NaN(m: Sequential): void {
  const p = m.parameters()[0];
  p.grad = randn(p.shape).mul(Number.NaN);
}
