// Grad-CAM and Grad-CAM++ against PyTorch with the same weights (torchvision's resnet18 and the
// tiny test CNN, whose target is found by the forward-hook fallback), and the errors for a layer
// or class that does not exist.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tidy, type Tensor } from '../../src/engine/index.js';
import { createModel } from '../../src/models/index.js';
import { explain, gradCam, ExplainError, type ExplainModel } from '../../src/explain/index.js';
import { OracleBatch, type OracleResult } from '../helpers/oracle.js';
import { TinyCnn } from '../train/tiny_model.js';

function close(name: string, a: Tensor, b: Tensor, tol = 1e-4): void {
  assert.deepEqual(a.shape, b.shape, `${name}: shape`);
  const err = tidy(() => a.float().sub(b.float()).abs().max().item());
  const scale = tidy(() => b.float().abs().max().item());
  assert.ok(err <= tol * Math.max(1, scale), `${name}: max |diff| ${err} (scale ${scale})`);
}

const CAM_PY = String.raw`
def cams(A, G):
    w = G.mean((2, 3), keepdim=True)
    cam = F.relu((w * A).sum(1))
    g2 = G ** 2; g3 = g2 * G; s = A.sum((2, 3), keepdim=True)
    aij = torch.where(G != 0, g2 / (2 * g2 + s * g3 + 1e-7), torch.zeros_like(G))
    campp = F.relu(((aij * F.relu(G)).sum((2, 3), keepdim=True) * A).sum(1))
    return cam, campp
def run(m, module, x, cls=None):
    acts = {}
    def hook(mod, inp, out):
        out.retain_grad(); acts['a'] = out
    h = module.register_forward_hook(hook)
    logits = m(x)
    h.remove()
    c = logits.argmax(1) if cls is None else torch.full((x.shape[0],), cls, dtype=torch.long)
    logits.gather(1, c[:, None]).sum().backward()
    cam, campp = cams(acts['a'].detach(), acts['a'].grad)
    up = F.interpolate(cam[:, None], size=x.shape[2:], mode='bilinear', align_corners=False)[:, 0]
    return up, cam, campp, c
`;

describe('Grad-CAM against PyTorch', () => {
  let resnet: ExplainModel;
  let tiny: ExplainModel;
  let x: Tensor;
  let xt: Tensor;
  const batch = new OracleBatch();
  let r1: OracleResult;
  let r2: OracleResult;

  before(async () => {
    manualSeed(3);
    resnet = createModel('resnet18', { numClasses: 10 });
    tiny = new TinyCnn({ numClasses: 5 });
    // non-trivial BN statistics so eval mode is exercised
    for (const m of [resnet, tiny]) for (const [k, t] of m.stateDict()) {
      if (k.endsWith('running_mean')) t.uniform_(-0.2, 0.2);
      if (k.endsWith('running_var')) t.uniform_(0.5, 1.5);
    }
    x = randn([2, 3, 64, 64]).keep();
    xt = randn([2, 1, 28, 28]).keep();
    const sd = (m: ExplainModel): Record<string, Tensor> => Object.fromEntries([...m.stateDict()].map(([k, v]) => [`sd.${k}`, v]));
    const a = batch.add(CAM_PY + String.raw`
import torchvision
m = torchvision.models.resnet18(num_classes=10)
m.load_state_dict({k[3:]: v for k, v in I.items() if k.startswith('sd.')}); m.eval()
x = I['x']
O['up'], O['cam'], O['campp'], O['cls'] = run(m, m.layer4, x)
O['up3'], O['cam3'], _, _ = run(m, m.layer3[1], x, cls=7)
`, { ...sd(resnet), x });
    const b = batch.add(CAM_PY + String.raw`
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False); self.bn1 = nn.BatchNorm2d(16); self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2); self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False); self.bn2 = nn.BatchNorm2d(32)
        self.avgpool = nn.AdaptiveAvgPool2d(1); self.dropout = nn.Dropout(0.0); self.fc = nn.Linear(32, 5)
        self.out = nn.Identity()
    def forward(self, x):
        y = self.pool(self.relu(self.bn1(self.conv1(x))))
        z = self.out(self.relu(self.bn2(self.conv2(y))))
        return self.fc(self.dropout(self.avgpool(z).flatten(1)))
m = Tiny()
m.load_state_dict({k[3:]: v for k, v in I.items() if k.startswith('sd.')}, strict=False); m.eval()
O['up'], O['cam'], O['campp'], O['cls'] = run(m, m.out, I['x'])
O['upc'], _, _, _ = run(m, m.conv2, I['x'], cls=2)
`, { ...sd(tiny), x: xt });
    await batch.run();
    r1 = batch.get(a);
    r2 = batch.get(b);
  });

  test('resnet18: the automatic target is layer4 and the maps equal PyTorch\'s', () => {
    const r = gradCam(resnet, x);
    assert.equal(r.layer, 'layer4');
    assert.deepEqual(r.classes, r1.cls.toArray());
    close('low-res map', r.lowRes, r1.cam);
    close('upsampled map', r.maps, r1.up);
    const pp = gradCam(resnet, x, { method: 'gradcampp' });
    close('Grad-CAM++ map', pp.lowRes, r1.campp);
  });

  test('resnet18: a named layer (layer3.1) and a given class', () => {
    const r = gradCam(resnet, x, { layer: 'layer3.1', classIndex: 7 });
    assert.equal(r.layer, 'layer3.1');
    assert.deepEqual(r.classes, [7, 7]);
    assert.deepEqual(r.lowRes.shape, [2, 4, 4]);
    close('layer3.1 map', r.lowRes, r1.cam3);
    close('layer3.1 upsampled', r.maps, r1.up3);
  });

  test('a model without forwardFeatures: the last call of the shared ReLU is the target', () => {
    const r = gradCam(tiny, xt);
    assert.equal(r.layer, 'relu');
    assert.deepEqual(r.classes, r2.cls.toArray());
    close('tiny map', r.maps, r2.up);
    const c = gradCam(tiny, xt, { layer: 'conv2', classIndex: 2 });
    close('tiny conv2 map', c.maps, r2.upc);
  });

  test('the model is left as it was: training mode, requiresGrad, no .grad written', () => {
    resnet.train();
    gradCam(resnet, x);
    assert.ok(resnet.modules().every((m) => m.training));
    assert.ok(resnet.parameters().every((p) => p.requiresGrad && p.grad === null));
    resnet.eval();
  });

  test('bad input: a missing module path, a non-spatial layer, a class out of range', () => {
    assert.throws(() => gradCam(resnet, x, { layer: 'layer5' }), (e: Error) => e instanceof ExplainError && /layer 'layer5': the model has no module of that name; its top-level modules are conv1, bn1, relu, maxpool, layer1/.test(e.message));
    assert.throws(() => gradCam(resnet, x, { layer: 'layer4.7' }), /modules under 'layer4' are layer4\.0, layer4\.1/);
    assert.throws(() => gradCam(resnet, x, { layer: 'fc' }), /layer 'fc': its output has shape \[2, 10\], not a \[N, C, H, W\] feature map/);
    assert.throws(() => gradCam(resnet, x, { classIndex: 10 }), /class 10 is out of range: the model has 10 classes \(0\.\.9\)/);
    assert.throws(() => explain(resnet, x, { method: 'occlusion', classIndex: -1 }), /class -1 is out of range/);
    assert.throws(() => explain(resnet, x, { method: 'nope' as 'ig' }), /unknown method 'nope': expected one of gradcam, gradcampp, ig, occlusion/);
  });
});

describe('Grad-CAM on every family of the zoo', () => {
  test('the automatic target is each family\'s last convolutional stage, and the map is finite', () => {
    const cases: [string, number[], string, number[]][] = [
      ['resnet20', [1, 3, 32, 32], 'layer3', [8, 8]],
      ['efficientnet_b0', [1, 3, 64, 64], 'features', [2, 2]],
      ['efficientnet_v2_s', [1, 3, 64, 64], 'features', [2, 2]],
      ['mobilenet_v2', [1, 3, 64, 64], 'features', [2, 2]],
      ['googlenet', [1, 3, 64, 64], 'inception5b', [2, 2]],
      ['inception_v3', [1, 3, 107, 107], 'Mixed_7c', [2, 2]],
      ['airbench_m', [1, 1, 28, 28], 'block3', [3, 3]],
    ];
    manualSeed(1);
    for (const [name, shape, layer, hw] of cases) {
      const m = createModel(name, { numClasses: 10, inChannels: shape[1] });
      try {
        tidy(() => {
          const r = gradCam(m, randn(shape), { method: 'gradcampp' });
          assert.equal(r.layer, layer, name);
          assert.deepEqual(r.lowRes.shape, [1, ...hw], name);
          assert.deepEqual(r.maps.shape, [1, shape[2], shape[3]], name);
          assert.ok(r.maps.isfinite().all().item() === 1 && r.maps.min().item() >= 0, `${name}: finite, non-negative`);
        });
      } finally {
        m.dispose();
      }
    }
  });
});
