// `convkit models` on a fresh machine: an empty cache directory, every registered model counted
// at its own example input (images and sequences alike), in seconds rather than a minute, with
// the numbers PyTorch gives (torchvision's parameter counts; MACs as fvcore / ptflops count them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { listModels } from '../../src/models/index.js';

const BIN = fileURLToPath(new URL('../../../bin/convkit.js', import.meta.url));

interface Row { name: string; family: string; params: number; macs: number; inputSize: number[] }

function models(args: string[], cacheDir: string): { code: number | null; stdout: string; stderr: string; ms: number } {
  const start = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'models', ...args], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, CONVKIT_CACHE_DIR: cacheDir, CONVKIT_NUM_THREADS: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - start };
}

// [params, MACs of one example]: resnet, efficientnet and mobilenet from torchvision 0.14's builders;
// the sequence models by hand (LSTM: 28 steps x 4*128*(28+128) + the 128->10 head; GRU: 3 gates)
const KNOWN: Record<string, [number, number]> = {
  resnet18: [11_689_512, 1_814_073_344],
  resnet50: [25_557_032, 4_089_184_256],
  mobilenet_v2: [3_504_872, 300_774_272],
  efficientnet_b0: [5_288_548, 385_814_752],
  resnet20: [269_722, 40_551_040],
  lstm_classifier: [4 * 128 * (28 + 128) + 2 * 4 * 128 + 1290, 28 * 4 * 128 * (28 + 128) + 1280],
  gru_classifier: [3 * 128 * (28 + 128) + 2 * 3 * 128 + 1290, 28 * 3 * 128 * (28 + 128) + 1280],
};

test('convkit models with an empty cache counts every registered model, fast, with known numbers', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-models-'));
  try {
    const cold = models(['--json'], cache);
    assert.equal(cold.code, 0, cold.stderr);
    const rows = JSON.parse(cold.stdout) as Row[];
    assert.deepEqual(rows.map((r) => r.name).sort(), listModels().map((e) => e.name).sort());
    for (const r of rows) {
      assert.ok(Number.isInteger(r.params) && r.params > 0, `${r.name}: params ${r.params}`);
      assert.ok(Number.isInteger(r.macs) && r.macs > 0, `${r.name}: MACs ${r.macs}`);
    }
    const byName = new Map(rows.map((r) => [r.name, r]));
    for (const [name, [params, macs]] of Object.entries(KNOWN)) {
      assert.deepEqual([byName.get(name)?.params, byName.get(name)?.macs], [params, macs], name);
    }
    // counting is shape-only (about 2 s for all of them here): a minute means models were run for real
    assert.ok(cold.ms < 30_000, `a cold count took ${(cold.ms / 1000).toFixed(1)} s`);
    assert.ok(fs.readdirSync(cache).some((f) => /^models-.*\.json$/.test(f)), 'the counts are cached');

    const table = models([], cache);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^resnet18 +resnet +11\.69M +1\.81G +3x224x224$/m);
    assert.match(table.stdout, /^lstm_classifier +sequence +82\.19K +2\.24M +1x28x28$/m);
    assert.match(table.stdout, new RegExp(`^${rows.length} models$`, 'm'));
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
