// A worker of the trainer's distributed tests (not a test file): a short run of the Trainer,
// alone or as one rank of a job (torchrun's variables), created or resumed, optionally stopped
// at a position. Environment: CK_DIR (the run's folder), CK_RESUME=1, CK_STOP=epoch,batch,
// CK_STOP_RANK (only that rank asks to stop, as a Ctrl-C seen by one process), CK_MODEL, CK_SYNC_BN=1.
import { Trainer } from '../../src/train/index.js';
import { ProcessGroup, inDistributedJob, workerEnv } from '../../src/distributed/index.js';
import '../../src/models/index.js';

const env = process.env;
const group = inDistributedJob() ? await ProcessGroup.init({ ...workerEnv(), rendezvousTimeoutMs: 30_000, timeoutMs: 60_000 }) : null;
const [stopEpoch, stopBatch] = (env.CK_STOP ?? '-1,-1').split(',').map(Number);
const opts = {
  distributed: group ? { group } : undefined,
  stopAfter: (e: number, b: number): boolean => e === stopEpoch && b === stopBatch && (env.CK_STOP_RANK === undefined || env.CK_STOP_RANK === env.RANK),
};
const trainer = env.CK_RESUME
  ? Trainer.resume(env.CK_DIR!, opts)
  : Trainer.create({
    model: env.CK_MODEL ?? 'lstm_classifier', dataset: 'synthetic', inChannels: 1, imageSize: [28, 28], limitTrain: 60, limitTest: 20,
    epochs: 2, batchSize: 12, lr: 0.05, augment: [], labelSmoothing: 0, evalFlip: false, bf16: false, channelsLast: false,
    threads: 1, outDir: env.CK_DIR, prefetch: 0, reportImages: 0, syncBatchNorm: env.CK_SYNC_BN === '1',
  }, opts);
try {
  const r = await trainer.run();
  console.log(JSON.stringify({ interrupted: r.interrupted, epochs: r.epochs, step: trainer.step }));
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 1;
} finally {
  trainer.dispose();
  group?.destroy();
}
