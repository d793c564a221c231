// The importance of each prunable unit (a set of coupled channels), summed over the layers that
// make or read it, as DepGraph aggregates over a group:
//  - 'l1': the L1 norm of the filters that make the channel and of the weights that read it
//    (Li et al. 2017);
//  - 'bn': |gamma| of the BatchNorms on the channel (network slimming, Liu et al. 2017); a
//    group with no BatchNorm falls back to L1;
//  - 'taylor': first-order Taylor expansion of the loss (Molchanov et al. 2017): for each layer
//    output channel, |sum over positions of activation x gradient| per image, summed over the
//    images of a few batches of real training data.
import { F, enableGrad, noGrad, tidy, zeros, type Tensor } from '../engine/index.js';
import { Conv2d, Linear, type Module } from '../nn/index.js';
import { PruneError, type DependencyGraph } from './prune_graph.js';

export type ImportanceMethod = 'l1' | 'bn' | 'taylor';
export const IMPORTANCE_METHODS: readonly ImportanceMethod[] = ['l1', 'bn', 'taylor'];

/** A batch of normalised images [N, C, H, W] and their class indices [N]. */
export interface TaylorBatch {
  x: Tensor;
  y: Tensor;
}

type AnyModule = Module<unknown[], unknown>;

const floats = (t: Tensor): Float64Array => Float64Array.from(t.toTypedArray() as Float32Array);

/** The score of each unit of g (higher: more important). */
export function channelImportance(model: AnyModule, g: DependencyGraph, method: ImportanceMethod, batches: TaylorBatch[] = []): Float64Array {
  if (!IMPORTANCE_METHODS.includes(method)) throw new PruneError(`unknown importance method '${String(method)}': use ${IMPORTANCE_METHODS.join(', ')}`);
  if (method === 'l1') return l1Importance(g);
  if (method === 'bn') {
    const bn = bnImportance(g);
    const l1 = l1Importance(g);
    for (const grp of g.groups) {
      if (grp.units.every((u) => bn[u] === 0)) for (const u of grp.units) bn[u] = l1[u];
    }
    return bn;
  }
  return taylorImportance(model, g, batches);
}

function l1Importance(g: DependencyGraph): Float64Array {
  const s = new Float64Array(g.units.length);
  const add = (atoms: Int32Array, v: Float64Array): void => atoms.forEach((a, i) => {
    const u = g.unitOf(a);
    if (u >= 0) s[u] += v[i];
  });
  const seen = new Set<string>();
  noGrad(() => tidy(() => {
    for (const use of g.uses) {
      if (use.kind === 'bn' || seen.has(use.path)) continue;
      seen.add(use.path);
      const w = (use.module as Conv2d | Linear).weight.abs();
      const dims = Array.from({ length: w.ndim }, (_, i) => i);
      add(use.out, floats(w.sum(dims.filter((d) => d !== 0)).float()));
      const m = use.module;
      // the weights that read the channel (a depthwise filter is its own producer: counted once)
      if (use.in && (m instanceof Linear || (m as Conv2d).groups === 1)) add(use.in, floats(w.sum(dims.filter((d) => d !== 1)).float()));
    }
  }));
  return s;
}

function bnImportance(g: DependencyGraph): Float64Array {
  const s = new Float64Array(g.units.length);
  const seen = new Set<string>();
  noGrad(() => tidy(() => {
    for (const use of g.uses) {
      if (use.kind !== 'bn' || seen.has(use.path) || !use.module.weight) continue;
      seen.add(use.path);
      const gamma = floats(use.module.weight.abs().float());
      use.out.forEach((a, i) => {
        const u = g.unitOf(a);
        if (u >= 0) s[u] += gamma[i];
      });
    }
  }));
  return s;
}

/**
 * Taylor scores from `batches`: each conv and linear layer's output gets a zero probe added
 * (out + p, with p a leaf), whose gradient is the loss's gradient at that output, so the
 * backward pass runs through the whole model once per batch. Eval mode (running statistics),
 * cross-entropy on the labels; parameters' gradients are cleared afterwards.
 */
export function taylorImportance(model: AnyModule, g: DependencyGraph, batches: TaylorBatch[]): Float64Array {
  if (batches.length === 0) throw new PruneError('Taylor importance needs a few batches of training data (images and labels)');
  const s = new Float64Array(g.units.length);
  const byPath = new Map<string, Int32Array>();
  for (const u of g.uses) if (u.kind !== 'bn' && !byPath.has(u.path)) byPath.set(u.path, u.out);
  const mods = model.namedModules().filter(([p]) => byPath.has(p));
  const probes: { path: string; out: Tensor; probe: Tensor }[] = [];
  const removers = mods.map(([path, m]) => m.registerForwardReplaceHook((_m, _in, output) => {
    const out = output as Tensor;
    const probe = zeros(out.shape, { dtype: out.dtype, requiresGrad: true });
    probes.push({ path, out, probe });
    return out.add(probe);
  }));
  const wasTraining = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  try {
    for (const b of batches) {
      probes.length = 0;
      tidy(() => enableGrad(() => {
        const logits = (model as unknown as Module<[Tensor], Tensor>).call(b.x);
        const loss = F.crossEntropy(logits.float(), b.y);
        loss.backward();
        noGrad(() => {
          for (const { path, out, probe } of probes) {
            const grad = probe.grad;
            if (!grad) continue;
            const prod = out.mul(grad).float();
            // the channel dimension: 1 of a feature map, the last of a Linear's output
            const cd = out.ndim === 4 ? 1 : out.ndim - 1;
            const spatial = Array.from({ length: out.ndim }, (_, i) => i).filter((d) => d !== 0 && d !== cd);
            const perImage = spatial.length ? prod.sum(spatial) : prod;
            const v = floats(perImage.abs().sum(0));
            byPath.get(path)!.forEach((a, i) => {
              const u = g.unitOf(a);
              if (u >= 0) s[u] += v[i];
            });
          }
        });
      }));
      for (const p of probes) p.probe.dispose();
    }
  } finally {
    for (const r of removers) r();
    for (const [m, t] of wasTraining) m.training = t;
    model.zeroGrad();
  }
  return s;
}
