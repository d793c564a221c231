// Parameters and multiply-adds of the EfficientNet family at each model's own resolution,
// measured with countMacs (one forward pass per model), and the compound-scaling ladder phi = 0..7.
//   node dist-dev/bench/efficientnet_scaling.js [--threads 2] [--phi 7] [--json out.json]
import { setNumThreads } from '../src/engine/index.js';
import { createModel, modelEntry } from '../src/models/index.js';
import { EFFICIENTNET_B_VARIANTS } from '../src/models/efficientnet.js';
import { describeScaling } from '../src/models/scaling.js';
import { countMacs } from '../src/analyze/macs.js';
import { arg, emit } from './common.js';

setNumThreads(arg('threads', 2));
const names = [...EFFICIENTNET_B_VARIANTS.map((v) => v.name), 'efficientnet_v2_s', 'efficientnet_v2_m', 'efficientnet_v2_l'];
const rows = names.map((name) => {
  const size = modelEntry(name).config.inputSize[1];
  const model = createModel(name);
  try {
    const macs = countMacs(model, [1, 3, size, size]).total;
    return [name, `${size}`, model.numParameters().toLocaleString('en-US'), (macs / 1e9).toFixed(3)];
  } finally {
    model.dispose();
  }
});
const ladder = Array.from({ length: arg('phi', 7) + 1 }, (_, phi) => describeScaling({ phi }));
emit('efficientnet_scaling', [
  {
    title: "EfficientNet parameters and multiply-adds at each model's resolution",
    headers: ['model', 'resolution', 'parameters', 'GMACs (1 image)'],
    rows,
  },
  {
    title: 'compound scaling from B0 (alpha 1.2, beta 1.1, gamma 1.15)',
    headers: ['phi', 'width', 'depth', 'resolution', 'parameters', 'MMACs', 'MACs / B0'],
    rows: ladder.map((r) => [String(r.phi ?? '-'), r.widthMult.toFixed(3), r.depthMult.toFixed(3), String(r.resolution),
      r.params.toLocaleString('en-US'), (r.macs / 1e6).toFixed(1), (r.macs / ladder[0].macs).toFixed(2)]),
  },
]);
