// The EfficientNet paper's Figures 3 and 8 at this machine's scale: a small EfficientNet base
// trained on Fashion-MNIST, scaled at phi = 0..3 by depth only, width only, resolution only and
// by the compound coefficients, each point trained with the ordinary Trainer; accuracy against
// MACs as a table and an SVG plot. Every single-dimension ladder doubles the MACs per unit of
// phi (depth x 2^phi, width x 2^(phi/2), resolution x 2^(phi/2)), as the compound one about does
// (alpha beta^2 gamma^2 ~ 2), so the curves compare at equal MACs.
//   node dist-dev/bench/scaling.js [--phis 0,1,2,3] [--epochs 3] [--limit-train N] [--limit-test N]
//     [--base-width 0.5] [--base-depth 0.5] [--resolution 32] [--alpha 1.2 --beta 1.1 --gamma 1.15]
//     [--base-seeds 3] [--batch-size 128] [--lr 0.05] [--threads 2] [--runs <dir>] [--svg <file>] [--json <file>] [--quick]
// Runs are kept under --runs (default runs/bench-scaling, outside bench/results, whose JSON files
// are all results): a rerun skips finished points,
// so a long study survives an interruption. --quick: phi 0..1 on a few hundred images, 1 epoch.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setNumThreads } from '../src/engine/index.js';
import { describeScaledBase, scaleBase, type CompoundCoefficients } from '../src/models/scaling.js';
import { Trainer } from '../src/train/trainer.js';
import { lineChart } from '../src/train/report.js';
import { arg, emit, listArg, writePlot } from './common.js';
import { stringArg } from './args.js';

const quick = process.argv.includes('--quick');
const threads = arg('threads', 2);
setNumThreads(threads);
const phis = (listArg('phis') ?? (quick ? ['0', '1'] : ['0', '1', '2', '3'])).map(Number);
const epochs = arg('epochs', quick ? 1 : 3);
const limitTrain = arg('limit-train', quick ? 256 : 60000);
const limitTest = arg('limit-test', quick ? 128 : 10000);
const base = {
  model: 'efficientnet_b0', widthMult: arg('base-width', quick ? 0.25 : 0.5), depthMult: arg('base-depth', quick ? 0.25 : 0.5),
  resolution: arg('resolution', quick ? 16 : 32), resolutionMultiple: arg('resolution-multiple', 4),
};
const compound: CompoundCoefficients = { alpha: arg('alpha', 1.2), beta: arg('beta', 1.1), gamma: arg('gamma', 1.15) };
const runsDir = path.resolve(stringArg('runs') ?? (quick ? fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-scaling-')) : 'runs/bench-scaling'));

// each ladder's coefficients: one dimension doubles the MACs per unit of phi on its own
const LADDERS: Record<string, CompoundCoefficients> = {
  depth: { alpha: 2, beta: 1, gamma: 1 },
  width: { alpha: 1, beta: Math.SQRT2, gamma: 1 },
  resolution: { alpha: 1, beta: 1, gamma: Math.SQRT2 },
  compound,
};
const COLORS: Record<string, string> = { depth: '#1f77b4', width: '#ff7f0e', resolution: '#2ca02c', compound: '#d62728' };

interface Point { ladder: string; phi: number; widthMult: number; depthMult: number; resolution: number; params: number; macs: number; top1: number; seconds: number }

/** Trains one scaled model under runsDir/key (or resumes it there); its top-1 and training seconds. */
async function trainPoint(key: string, s: ReturnType<typeof scaleBase>, seed: number): Promise<{ top1: number; seconds: number }> {
  const dir = path.join(runsDir, key);
  const last = path.join(dir, 'last.safetensors');
  const r = s.resolution;
  const trainer = fs.existsSync(last) ? Trainer.resume(last) : Trainer.create({
    model: base.model, modelOptions: s.modelOptions, dataset: 'fashion-mnist', epochs, limitTrain, limitTest, imageSize: [r, r],
    augment: [{ name: 'resize', size: [r, r] }, { name: 'randomHorizontalFlip' }], batchSize: arg('batch-size', 128), lr: arg('lr', 0.05),
    optimizer: 'sgd', warmupEpochs: quick ? 0 : 1, labelSmoothing: 0.1, threads, reportImages: 0, outDir: dir, seed,
    // fp32 everywhere: bf16's speed-up depends on the shapes, and the points' times should compare
    bf16: false,
  }, { overwrite: true });
  try {
    const res = await trainer.run();
    if (res.interrupted) process.exit(130);
    return { top1: res.last?.valAcc ?? 0, seconds: trainer.history.reduce((a, h) => a + h.epochSeconds, 0) };
  } finally {
    trainer.dispose();
  }
}

const points: Point[] = [];
for (const [ladder, c] of Object.entries(LADDERS)) {
  for (const phi of phis) {
    // phi = 0 is the same base for every ladder: trained once
    const s = scaleBase(base, { ...c, phi });
    const { top1, seconds } = await trainPoint(phi === 0 ? 'base' : `${ladder}-phi${phi}`, s, 0);
    const d = describeScaledBase(s, { numClasses: 10, inChannels: 1 });
    points.push({ ladder, phi, widthMult: s.widthMult, depthMult: s.depthMult, resolution: s.resolution, params: d.params, macs: d.macs, top1, seconds });
    console.error(`${ladder} phi=${phi}: ${(d.macs / 1e6).toFixed(2)} M MACs, top-1 ${(100 * top1).toFixed(2)}% (${seconds.toFixed(0)} s)`);
  }
}

// one point's noise: the base again at other seeds (every point above is one run at seed 0)
const baseSeeds = arg('base-seeds', quick ? 1 : 3);
const baseTop1 = [points.find((p) => p.phi === 0)?.top1 ?? Number.NaN];
for (let seed = 1; seed < baseSeeds; seed++) {
  const { top1 } = await trainPoint(`base-seed${seed}`, scaleBase(base, { ...compound, phi: 0 }), seed);
  baseTop1.push(top1);
  console.error(`base, seed ${seed}: top-1 ${(100 * top1).toFixed(2)}%`);
}
const mean = baseTop1.reduce((a, b) => a + b, 0) / baseTop1.length;
const std = Math.sqrt(baseTop1.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, baseTop1.length - 1));

// accuracy against MACs on a log axis (lineChart's axes are linear: x is log10 of the MMACs)
const svg = lineChart('Fashion-MNIST top-1 (%) against MACs', Object.keys(LADDERS).map((ladder) => ({
  name: ladder, color: COLORS[ladder], points: points.filter((p) => p.ladder === ladder).map((p) => [Math.log10(p.macs / 1e6), 100 * p.top1] as [number, number]),
})), 'log10 of multiply-adds per image (millions)', { width: 560, height: 340 });
const plot = writePlot('scaling', svg, runsDir);

// at equal MACs: each ladder's accuracy at each phi next to compound's
const byPhi = phis.map((phi) => {
  const at = (l: string): Point | undefined => points.find((p) => p.ladder === l && p.phi === phi);
  return [String(phi), ...Object.keys(LADDERS).map((l) => { const p = at(l); return p ? `${(100 * p.top1).toFixed(2)} (${(p.macs / 1e6).toFixed(1)} M)` : '-'; })];
});
emit('scaling', [
  {
    title: `EfficientNet-B0 base (width ${base.widthMult}, depth ${base.depthMult}, ${base.resolution} px) scaled on Fashion-MNIST, ${epochs} epochs, ${limitTrain} training images: every point`,
    headers: ['scaling', 'phi', 'width', 'depth', 'resolution', 'parameters', 'MMACs', 'top-1 %', 'train s'],
    rows: points.map((p) => [p.ladder, String(p.phi), p.widthMult.toFixed(3), p.depthMult.toFixed(3), String(p.resolution),
      p.params.toLocaleString('en-US'), (p.macs / 1e6).toFixed(2), (100 * p.top1).toFixed(2), p.seconds.toFixed(0)]),
  },
  {
    title: `top-1 % (MMACs) by phi: compound is alpha ${compound.alpha}, beta ${compound.beta}, gamma ${compound.gamma}`,
    headers: ['phi', ...Object.keys(LADDERS)],
    rows: byPhi,
  },
  {
    title: 'the noise of one point: the base trained at other seeds, same recipe',
    headers: ['seeds', 'top-1 % each', 'mean', 'standard deviation (points)'],
    rows: [[String(baseTop1.length), baseTop1.map((t) => (100 * t).toFixed(2)).join(', '), (100 * mean).toFixed(2), (100 * std).toFixed(2)]],
  },
], plot);
// a quick check's runs are scratch (its plot stays)
if (quick && stringArg('runs') === undefined) {
  for (const d of fs.readdirSync(runsDir)) if (d === 'base' || /-phi\d+$|^base-seed\d+$/.test(d)) fs.rmSync(path.join(runsDir, d), { recursive: true, force: true });
}
