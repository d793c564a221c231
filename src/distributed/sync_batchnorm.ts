// SyncBatchNorm: batch statistics over the global batch (every rank's share), as PyTorch's
// nn.SyncBatchNorm. The per-channel sums go through a differentiable all-reduce, so autograd
// also sums the statistics' gradients over ranks; the rest is BatchNorm's formula in tensor ops.
// Two all-reduces per layer and pass (the mean, then the variance around it): a little latency
// for the numerics of a single process's BatchNorm.
// Running statistics use the global count (unbiased variance), as PyTorch.
import { cat, full, noGrad, type Tensor } from '../engine/index.js';
import { BatchNorm1d, BatchNorm2d, type Module } from '../nn/index.js';
import type { ProcessGroup } from './process_group.js';

type BatchNorm = BatchNorm1d | BatchNorm2d;

/**
 * Makes every BatchNorm of the model synchronise its training statistics over the group (in
 * place; evaluation is untouched). Returns a function that restores the plain forward.
 */
export function convertSyncBatchNorm(model: Module<unknown[], unknown>, group: ProcessGroup): () => void {
  const patched: BatchNorm[] = [];
  for (const m of model.modules()) {
    if (!(m instanceof BatchNorm2d || m instanceof BatchNorm1d)) continue;
    const bn = m;
    const plain = bn.forward.bind(bn);
    bn.forward = (x: Tensor): Tensor => (bn.training && group.worldSize > 1 ? syncForward(bn, x, group) : plain(x));
    patched.push(bn);
  }
  return () => {
    for (const bn of patched) delete (bn as { forward?: unknown }).forward;
  };
}

function syncForward(bn: BatchNorm, x: Tensor, group: ProcessGroup): Tensor {
  const c = bn.numFeatures;
  if (x.ndim < 2 || x.size(1) !== c) throw new Error(`SyncBatchNorm: expected input with ${c} channels in dim 1, got shape [${x.shape.join(', ')}]`);
  const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
  const shape = [1, c, ...Array.from({ length: x.ndim - 2 }, () => 1)];
  const xf = x.float();
  // two passes over the global batch, as a single process's BatchNorm: the mean first, then the
  // squared deviations from it (sums of x and x^2 would cancel when the mean dwarfs the spread)
  const first = group.allReduceDiff(cat([xf.sum(dims), full([1], x.numel() / c)]));
  const count = first.slice(0, c, c + 1);
  const mean = first.slice(0, 0, c).div(count);
  const centered = xf.sub(mean.reshape(shape));
  const variance = group.allReduceDiff(centered.mul(centered).sum(dims)).div(count);
  let y = centered.mul(variance.add(bn.eps).rsqrt().reshape(shape));
  if (bn.weight) y = y.mul(bn.weight.reshape(shape));
  if (bn.bias) y = y.add(bn.bias.reshape(shape));
  const runningMean = bn.buffer('running_mean');
  const runningVar = bn.buffer('running_var');
  if (runningMean && runningVar) {
    noGrad(() => {
      const tracked = bn.buffer('num_batches_tracked')!;
      tracked.add_(1);
      const m = bn.momentum ?? 1 / tracked.item();
      const total = count.item();
      const unbiased = variance.mul(total / Math.max(total - 1, 1));
      runningMean.mul_(1 - m).add_(mean.detach().mul(m));
      runningVar.mul_(1 - m).add_(unbiased.detach().mul(m));
    });
  }
  return y.to(x.dtype);
}
