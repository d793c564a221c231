// A worker of the distributed tests (not a test file): trains a tiny model for a few steps on a
// fixed global batch stream and writes its final parameters as JSON. Configured by environment:
// RANK, WORLD_SIZE, MASTER_PORT (torchrun's), CK_MODEL plain|syncbn, CK_STEPS, CK_BATCH (global),
// CK_OUT (JSON file), CK_ACCUMULATE (micro-batches per step, the first ones under noSync),
// CK_HANG_AT (step at which rank 1 sleeps forever: a stuck peer), CK_TIMEOUT_MS, CK_BUCKET_VIEW
// 0|1 and CK_COMM_HOOK allreduce|fp16 (DDP's options), CK_ZERO_GRAD none|zeros (zeroGrad's setToNone).
import { writeFileSync } from 'node:fs';
import { F, manualSeed, noGrad, randn, randint, setNumThreads, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential, type Layer, type Module } from '../../src/nn/index.js';
import { SGD } from '../../src/train/optim/index.js';
import { ProcessGroup, DistributedDataParallel, convertSyncBatchNorm, workerEnv, type DdpCommHook } from '../../src/distributed/index.js';

setNumThreads(1);
const env = process.env;
const world = Number(env.WORLD_SIZE ?? 1);
const steps = Number(env.CK_STEPS ?? 3);
const batch = Number(env.CK_BATCH ?? 8);
const accumulate = Number(env.CK_ACCUMULATE ?? 1);
const kind = env.CK_MODEL ?? 'plain';

manualSeed(7);
const layers: Layer[] = [new Conv2d(3, 6, 3, { padding: 1 })];
if (kind === 'syncbn') layers.push(new BatchNorm2d(6));
layers.push(new ReLU(), new Conv2d(6, 8, 3, { stride: 2 }), new ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(8, 5));
const model = new Sequential(...layers);
model.train();
// the global batches: the same stream in every process
const xs: Tensor[] = [];
const ys: Tensor[] = [];
for (let s = 0; s < steps; s++) {
  xs.push(randn([batch, 3, 10, 10]).keep());
  ys.push(randint(0, 5, [batch]).keep());
}
// a different init on each rank: DDP must copy rank 0's
const rank = world > 1 ? Number(env.RANK) : 0;
if (rank > 0) manualSeed(100 + rank);
if (rank > 0) for (const p of model.parameters()) tidy(() => noGrad(() => p.copy_(randn(p.shape))));

const opt = new SGD([{ params: model.parameters() }], { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
let group: ProcessGroup | null = null;
let ddp: DistributedDataParallel | null = null;
if (world > 1) {
  try {
    group = await ProcessGroup.init({ ...workerEnv(), rendezvousTimeoutMs: Number(env.CK_RDZV_MS ?? 20000), timeoutMs: Number(env.CK_TIMEOUT_MS ?? 20000) });
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
  // the Promise-returning collectives: a sum, a broadcast from the last rank, a barrier
  const t = tensor([rank + 1, 10]);
  const b = tensor([rank, rank]);
  // rank 1 comes 300 ms late: rank 0's event loop keeps turning while it waits
  if (rank === 1) await new Promise((r) => setTimeout(r, 300));
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  await Promise.all([group.allReduce(t).wait(), group.broadcast(b, world - 1).wait()]);
  clearInterval(timer);
  if (rank === 0) console.log(`ticks while waiting ${ticks}`);
  await group.barrier().wait();
  console.log(`collectives ${JSON.stringify([...t.toArray() as number[], ...b.toArray() as number[]])}`);
  if (kind === 'syncbn') convertSyncBatchNorm(model as Module<unknown[], unknown>, group);
  const gradientAsBucketView = env.CK_BUCKET_VIEW === undefined ? undefined : env.CK_BUCKET_VIEW === '1';
  ddp = new DistributedDataParallel(model as Module<unknown[], unknown>, group, { gradientAsBucketView, commHook: env.CK_COMM_HOOK as DdpCommHook | undefined });
}

/** Rows of this rank: r, r + W, ... of the global batch (the DataLoader's sharding). */
const shard = (t: Tensor, part: number, parts: number): Tensor => {
  const idx = Array.from({ length: t.size(0) }, (_, i) => i).filter((i) => i % (world * parts) === rank + world * part);
  return t.indexSelect(0, tensor(idx, { dtype: 'int64' }));
};

// CK_LOOP: cycle over the batches until killed (the fault tests)
const total = env.CK_LOOP ? Number.MAX_SAFE_INTEGER : steps;
try {
for (let i = 0; i < total; i++) {
  const s = i % steps;
  if (i === 0) console.log('training');
  if (env.CK_HANG_AT && Number(env.CK_HANG_AT) === s && rank === 1) {
    await new Promise(() => setInterval(() => undefined, 1000)); // alive, never joins the step
  }
  tidy(() => {
    opt.zeroGrad(env.CK_ZERO_GRAD !== 'zeros');
    for (let part = 0; part < accumulate; part++) {
      const x = shard(xs[s], part, accumulate);
      const y = shard(ys[s], part, accumulate);
      const run = (): void => {
        const out = ddp ? (ddp.forward(x) as Tensor) : (model.call(x) as Tensor);
        const loss = F.crossEntropy(out, y).div(accumulate);
        if (ddp) ddp.backward(loss);
        else loss.backward();
      };
      if (ddp && part < accumulate - 1) ddp.noSync(run);
      else run();
    }
    opt.step();
  });
}
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
const params = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, Array.from(p.toTypedArray() as Float32Array)]));
const buffers = Object.fromEntries(model.namedBuffers().filter(([n]) => n.includes('running')).map(([n, b]) => [n, Array.from(b.toTypedArray() as Float32Array)]));
// the tiny model's gradients fill one bucket: as bucket views, the first and the last share it
const [first, last] = [model.parameters()[0].grad!, model.parameters().at(-1)!.grad!];
const gradsShareBucket = first.sharesStorageWith(last);
if (env.CK_OUT) writeFileSync(env.CK_OUT, JSON.stringify({ params, buffers, buckets: ddp?.bucketSizes() ?? [], gradsShareBucket }));
ddp?.dispose();
group?.destroy();
