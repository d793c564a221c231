// The child process of the fuzz tests: `node driver.js <reader> <manifest.json>` runs one reader
// on each file the manifest lists, in order, and prints one JSON line per input as soon as it is
// done, so that when this process crashes or hangs the parent knows which input did it (the
// first one without a line). Last comes a line with the peak memory.
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ReaderName = 'idx' | 'cifar' | 'image' | 'zip' | 'pickle' | 'pth' | 'safetensors' | 'checkpoint';

/** One input's outcome: read (ok), or refused with the error's name and message. */
export interface Outcome {
  i: number;
  ok: boolean;
  name?: string;
  message?: string;
}

type Read = (path: string) => Promise<void> | void;

async function reader(name: ReaderName): Promise<Read> {
  switch (name) {
    case 'idx': {
      const { readIdx } = await import('../../src/io/idx.js');
      return (p) => void readIdx(p);
    }
    case 'cifar': {
      const { readCifar } = await import('../../src/io/cifar.js');
      // the reader takes a folder: each input is linked in as test_batch.bin
      return (p) => {
        const dir = mkdtempSync(join(tmpdir(), 'convkit-fuzz-cifar-'));
        try {
          symlinkSync(p, join(dir, 'test_batch.bin'));
          readCifar(dir, { variant: 'cifar10', split: 'test' });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
    }
    case 'image': {
      const { decodeImage } = await import('../../src/io/images.js');
      return async (p) => void (await decodeImage(p, { size: [8, 8] }));
    }
    case 'zip': {
      const { ZipReader } = await import('../../src/io/zip.js');
      return (p) => {
        const z = ZipReader.open(p);
        try {
          for (const e of z.entries) z.readEntry(e, 1 << 24);
        } finally {
          z.close();
        }
      };
    }
    case 'pickle': {
      const { unpickle } = await import('../../src/io/pickle.js');
      const { readInputFile } = await import('../../src/io/files.js');
      return (p) => void unpickle(readInputFile(p), { source: p });
    }
    case 'pth': {
      const { readPth } = await import('../../src/io/pth.js');
      return (p) => {
        for (const t of readPth(p).values()) t.dispose();
      };
    }
    case 'safetensors': {
      const { readSafetensors } = await import('../../src/io/safetensors.js');
      return (p) => {
        for (const t of readSafetensors(p).values()) t.dispose();
      };
    }
    case 'checkpoint': {
      const { loadCheckpoint } = await import('../../src/train/checkpoint.js');
      const { checkTrainState } = await import('../../src/train/train_state.js');
      return (p) => {
        const ck = loadCheckpoint(p);
        try {
          checkTrainState(p, ck.meta);
        } finally {
          ck.dispose();
        }
      };
    }
  }
}

async function main(): Promise<void> {
  const [name, manifest] = process.argv.slice(2) as [ReaderName, string];
  const paths = JSON.parse(readFileSync(manifest, 'utf8')) as string[];
  const read = await reader(name);
  for (let i = 0; i < paths.length; i++) {
    let out: Outcome;
    try {
      await read(paths[i]!);
      out = { i, ok: true };
    } catch (e) {
      out = e instanceof Error ? { i, ok: false, name: e.name, message: e.message } : { i, ok: false, name: typeof e, message: String(e) };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
  process.stdout.write(`${JSON.stringify({ maxRssKB: process.resourceUsage().maxRSS })}\n`);
}

await main();
