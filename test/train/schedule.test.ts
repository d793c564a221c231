// The lr schedules against torch.optim.lr_scheduler: the lr of every group (and OneCycleLR's
// momentum / beta1) at each of 50 steps, to 1e-10 relative; then stateDict round trips
// mid-way and the errors.
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';

import { Tensor, randn } from '../../src/engine/index.js';
import { Parameter } from '../../src/nn/index.js';
import { Adam, SGD, type Optimizer, type GroupOptions, type OptimizerMeta } from '../../src/train/optim/index.js';
import {
  CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR, OneCycleLR, SequentialLR, StepLR,
  type Scheduler, type SchedulerState,
} from '../../src/train/schedule.js';
import { OracleBatch } from '../helpers/oracle.js';

const STEPS = 50;
type Kind = 'sgd' | 'adam';

interface Case {
  name: string;
  optim: Kind;
  /** Python: builds `sched` from `opt` */
  py: string;
  js: (opt: Optimizer<GroupOptions>) => Scheduler;
  /** also compare momentum (SGD) or beta1 (Adam) of each group */
  momentum?: boolean;
}

const CASES: Case[] = [
  { name: 'step', optim: 'sgd', py: 'S.StepLR(opt, step_size=7, gamma=0.5)', js: (o) => new StepLR(o, { stepSize: 7, gamma: 0.5 }) },
  {
    name: 'multistep', optim: 'sgd', py: 'S.MultiStepLR(opt, milestones=[30, 5, 15, 15], gamma=0.3)',
    js: (o) => new MultiStepLR(o, { milestones: [30, 5, 15, 15], gamma: 0.3 }),
  },
  { name: 'exponential', optim: 'sgd', py: 'S.ExponentialLR(opt, gamma=0.93)', js: (o) => new ExponentialLR(o, { gamma: 0.93 }) },
  {
    name: 'linear_warmup', optim: 'sgd', py: 'S.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=10)',
    js: (o) => new LinearLR(o, { startFactor: 0.1, endFactor: 1, totalIters: 10 }),
  },
  {
    name: 'linear_decay', optim: 'adam', py: 'S.LinearLR(opt, start_factor=1.0, end_factor=0.2, total_iters=20)',
    js: (o) => new LinearLR(o, { startFactor: 1, endFactor: 0.2, totalIters: 20 }),
  },
  { name: 'linear_defaults', optim: 'sgd', py: 'S.LinearLR(opt)', js: (o) => new LinearLR(o) },
  {
    // past tMax the recursive form climbs back (its restart branch): PyTorch's numbers, not the closed form's
    name: 'cosine_restart', optim: 'sgd', py: 'S.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)',
    js: (o) => new CosineAnnealingLR(o, { tMax: 20, etaMin: 1e-4 }),
  },
  { name: 'cosine', optim: 'adam', py: 'S.CosineAnnealingLR(opt, T_max=50)', js: (o) => new CosineAnnealingLR(o, { tMax: 50 }) },
  {
    name: 'onecycle_sgd', optim: 'sgd', momentum: true, py: 'S.OneCycleLR(opt, max_lr=[0.1, 0.05], total_steps=50)',
    js: (o) => new OneCycleLR(o, { maxLr: [0.1, 0.05], totalSteps: 50 }),
  },
  {
    name: 'onecycle_adam_three_phase_linear', optim: 'adam', momentum: true,
    py: "S.OneCycleLR(opt, max_lr=0.01, total_steps=60, anneal_strategy='linear', three_phase=True, pct_start=0.25, div_factor=10., final_div_factor=100., base_momentum=0.8, max_momentum=0.9)",
    js: (o) => new OneCycleLR(o, { maxLr: 0.01, totalSteps: 60, annealStrategy: 'linear', threePhase: true, pctStart: 0.25, divFactor: 10, finalDivFactor: 100, baseMomentum: 0.8, maxMomentum: 0.9 }),
  },
  {
    name: 'onecycle_epochs_no_momentum', optim: 'adam', momentum: true, py: 'S.OneCycleLR(opt, max_lr=0.3, epochs=5, steps_per_epoch=10, cycle_momentum=False)',
    js: (o) => new OneCycleLR(o, { maxLr: 0.3, epochs: 5, stepsPerEpoch: 10, cycleMomentum: false }),
  },
  {
    name: 'warmup_cosine', optim: 'sgd',
    py: 'S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.01, total_iters=5), S.CosineAnnealingLR(opt, T_max=45, eta_min=1e-5)], milestones=[5])',
    js: (o) => new SequentialLR(o, [new LinearLR(o, { startFactor: 0.01, totalIters: 5 }), new CosineAnnealingLR(o, { tMax: 45, etaMin: 1e-5 })], [5]),
  },
  {
    name: 'sequential_three', optim: 'adam',
    py: 'S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=4), S.StepLR(opt, 5, 0.5), S.ExponentialLR(opt, 0.9)], milestones=[4, 20])',
    js: (o) => new SequentialLR(o, [new LinearLR(o, { startFactor: 0.1, totalIters: 4 }), new StepLR(o, { stepSize: 5, gamma: 0.5 }), new ExponentialLR(o, { gamma: 0.9 })], [4, 20]),
  },
];

// torch: two groups with their own lr; the optimizer steps without gradients (a no-op), then the schedule
const PY = String.raw`
import json, warnings
import torch.optim.lr_scheduler as S
warnings.filterwarnings('ignore')
STEPS = __STEPS__
for c in json.loads(__CASES__):
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    if c['optim'] == 'sgd':
        opt = torch.optim.SGD([{'params': [a]}, {'params': [b], 'lr': 0.01}], lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam([{'params': [a]}, {'params': [b], 'lr': 0.01}], lr=0.1)
    sched = eval(c['py'])
    key = 'momentum' if c['optim'] == 'sgd' else 'betas'
    mom = lambda: [g[key] if key == 'momentum' else g[key][0] for g in opt.param_groups]
    lrs, moms = [sched.get_last_lr()], [mom()]
    for _ in range(STEPS):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
        moms.append(mom())
    O[c['name'] + '.lr'] = torch.tensor(lrs, dtype=torch.float64)
    O[c['name'] + '.mom'] = torch.tensor(moms, dtype=torch.float64)
`;

function makeOptimizer(kind: Kind): Optimizer<GroupOptions> {
  const a = new Parameter(randn([3]));
  const b = new Parameter(randn([2]));
  return kind === 'sgd'
    ? new SGD([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1, momentum: 0.9 })
    : new Adam([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1 });
}

function disposeOptimizer(opt: Optimizer<GroupOptions>): void {
  for (const g of opt.paramGroups) for (const p of g.params) p.dispose();
  opt.dispose();
}

const momentumOf = (opt: Optimizer<GroupOptions>): number[] =>
  opt.paramGroups.map((g) => ('betas' in g ? (g.betas as number[])[0] : (g as unknown as { momentum: number }).momentum));

/** Steps a schedule and records [lr per group] and [momentum per group] after construction and each step. */
function record(opt: Optimizer<GroupOptions>, sched: Scheduler, steps: number, lrs: number[][] = [sched.getLastLr()], moms: number[][] = [momentumOf(opt)]): { lrs: number[][]; moms: number[][] } {
  for (let i = 0; i < steps; i++) {
    opt.step();
    sched.step();
    lrs.push(sched.getLastLr());
    moms.push(momentumOf(opt));
  }
  return { lrs, moms };
}

function assertSeries(actual: number[][], expected: Tensor, what: string): void {
  const ref = expected.toArray() as number[][];
  assert.equal(actual.length, ref.length, `${what}: ${actual.length} steps recorded, PyTorch has ${ref.length}`);
  ref.forEach((row, step) => row.forEach((e, g) => {
    const a = actual[step][g];
    const err = Math.abs(a - e);
    assert.ok(err <= 1e-10 * Math.abs(e) + 1e-300, `${what}: step ${step}, group ${g}: ${a} vs PyTorch's ${e} (rel err ${(err / Math.abs(e)).toExponential(2)})`);
  }));
}

const batch = new OracleBatch();
let key = -1;

before(async () => {
  const spec = CASES.map((c) => ({ name: c.name, optim: c.optim, py: c.py }));
  key = batch.add(PY.replace('__STEPS__', String(STEPS)).replace('__CASES__', JSON.stringify(JSON.stringify(spec))), {}, 'schedules');
  await batch.run();
});

describe('the lr at every step equals PyTorch\'s', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const ref = batch.get(key);
      const opt = makeOptimizer(c.optim);
      const sched = c.js(opt);
      const { lrs, moms } = record(opt, sched, STEPS);
      assertSeries(lrs, ref[`${c.name}.lr`], `${c.name} lr`);
      if (c.momentum) assertSeries(moms, ref[`${c.name}.mom`], `${c.name} momentum`);
      // getLastLr is what the groups hold
      assert.deepEqual(opt.paramGroups.map((g) => g.lr), lrs[lrs.length - 1]);
      disposeOptimizer(opt);
    });
  }
});

describe('stateDict round trip mid-way', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const ref = batch.get(key);
      // the first run stops at step 20 and checkpoints optimizer and schedule as JSON
      const opt1 = makeOptimizer(c.optim);
      const sched1 = c.js(opt1);
      const first = record(opt1, sched1, 20);
      const saved = JSON.parse(JSON.stringify({ opt: opt1.stateDict().meta, sched: sched1.stateDict() })) as { opt: OptimizerMeta; sched: SchedulerState };
      // the second builds both afresh (which moves the lr), then loads, as with torch
      const opt2 = makeOptimizer(c.optim);
      const sched2 = c.js(opt2);
      opt2.loadStateDict({ tensors: new Map(), meta: saved.opt });
      sched2.loadStateDict(saved.sched);
      assert.deepEqual(sched2.getLastLr(), first.lrs[20]);
      const { lrs, moms } = record(opt2, sched2, STEPS - 20, first.lrs, first.moms);
      assertSeries(lrs, ref[`${c.name}.lr`], `${c.name} lr after resuming`);
      if (c.momentum) assertSeries(moms, ref[`${c.name}.mom`], `${c.name} momentum after resuming`);
      disposeOptimizer(opt1);
      disposeOptimizer(opt2);
    });
  }
});

describe('schedule errors', () => {
  test('bad settings and states are refused with the reason', () => {
    const opt = makeOptimizer('sgd');
    assert.throws(() => new StepLR(opt, { stepSize: 0 }), /StepLR: stepSize must be an integer >= 1, got 0/);
    assert.throws(() => new LinearLR(opt, { startFactor: 2 }), /LinearLR: startFactor must be in \[0, 1\], got 2/);
    assert.throws(() => new OneCycleLR(opt, { maxLr: 0.1 }), /OneCycleLR: give totalSteps, or epochs and stepsPerEpoch/);
    assert.throws(() => new OneCycleLR(opt, { maxLr: [0.1], totalSteps: 5 }), /expected 2 values for maxLr/);
    const a = new StepLR(opt, { stepSize: 3 });
    const b = new ExponentialLR(opt, { gamma: 0.9 });
    assert.throws(() => new SequentialLR(opt, [a, b], [3, 5]), /expected 1 milestones for 2 schedules, got 2/);
    assert.throws(() => a.loadStateDict(b.stateDict()), /StepLR\.loadStateDict: expected the state of a StepLR, got ExponentialLR/);
    assert.throws(() => a.loadStateDict({ ...a.stateDict(), baseLrs: [0.1] }), /baseLrs must be 2 numbers \(one per param group\)/);
    const other = makeOptimizer('sgd');
    assert.throws(() => new SequentialLR(opt, [a, new StepLR(other, { stepSize: 2 })], [3]), /schedule 1 \(StepLR\) drives another optimizer/);
    const cycle = new OneCycleLR(opt, { maxLr: 0.1, totalSteps: 3 });
    for (let i = 0; i < 3; i++) cycle.step();
    assert.throws(() => cycle.step(), /OneCycleLR: tried to step 5 times; the cycle has 3 steps/);
    disposeOptimizer(opt);
    disposeOptimizer(other);
  });
});
