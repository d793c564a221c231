import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { DatasetFileError } from '../../src/io/idx.js';
import { decodeImage, decodeImages, encodePng, listImageFolder } from '../../src/io/images.js';

type Rgb = [number, number, number];

function solid(width: number, height: number, [r, g, b]: Rgb): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } });
}

/** Raw interleaved pixels, built by `at(x, y)`, as a sharp input. */
function rawImage(width: number, height: number, channels: 3 | 4, at: (x: number, y: number) => number[]): Sharp {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(at(x, y), (y * width + x) * channels);
  }
  return sharp(data, { raw: { width, height, channels } });
}

// PIL's RGB -> L, the reference for channels: 1.
function luma([r, g, b]: Rgb): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

function assertPlanes(data: Uint8Array, h: number, w: number, expected: number[], tolerance = 0): void {
  assert.equal(data.length, expected.length * h * w);
  expected.forEach((value, c) => {
    for (let i = 0; i < h * w; i++) {
      const got = data[c * h * w + i]!;
      assert.ok(Math.abs(got - value) <= tolerance, `channel ${c} pixel ${i}: expected ${value}±${tolerance}, got ${got}`);
    }
  });
}

const RED: Rgb = [200, 50, 25];
const BLUE: Rgb = [20, 40, 220];

describe('image folders', () => {
  let root: string;
  const path = (...p: string[]): string => join(root, 'set', ...p);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'convkit-images-'));
    for (const d of ['Zebra', 'cat', 'dog/nested', '.ipynb_checkpoints', 'empty-not-a-class.txt']) {
      if (!d.endsWith('.txt')) mkdirSync(path(d), { recursive: true });
    }
    await solid(40, 30, RED).png().toFile(path('cat', 'red.png'));
    await solid(17, 9, RED).jpeg({ quality: 95 }).toFile(path('cat', 'red-upper.JPG'));
    // RGBA with transparent pixels whose colour must survive (PIL drops alpha, it does not composite).
    await rawImage(12, 12, 4, (x) => [10, 200, 30, x < 6 ? 0 : 255]).png().toFile(path('cat', 'rgba.png'));
    await solid(16, 24, BLUE).webp({ lossless: true }).toFile(path('dog', 'blue.webp'));
    await solid(33, 17, [90, 90, 90]).greyscale().jpeg({ quality: 95 }).toFile(path('dog', 'nested', 'gray.jpeg'));
    await solid(8, 8, BLUE).png().toFile(path('Zebra', 'z.png'));
    await solid(8, 8, BLUE).png().toFile(path('.ipynb_checkpoints', 'hidden.png'));
    writeFileSync(path('cat', 'notes.txt'), 'not an image');
    writeFileSync(path('empty-not-a-class.txt'), 'a file at the top level');
    // Corrupt: random bytes named .jpg, and a PNG cut in half.
    writeFileSync(path('dog', 'corrupt.jpg'), Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 97 + 13) % 256)));
    const png = await solid(64, 48, BLUE).png({ compressionLevel: 0 }).toBuffer();
    writeFileSync(path('dog', 'truncated.png'), png.subarray(0, png.length >> 1));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('lists sorted classes and their images, like torchvision ImageFolder', () => {
    const f = listImageFolder(path());
    // Code-point order: upper case first; hidden folders and top-level files are not classes.
    assert.deepEqual(f.classes, ['Zebra', 'cat', 'dog']);
    const rel = f.items.map((i) => [i.path.slice(path().length + 1), i.label]);
    assert.deepEqual(rel, [
      ['Zebra/z.png', 0],
      ['cat/red-upper.JPG', 1],
      ['cat/red.png', 1],
      ['cat/rgba.png', 1],
      ['dog/blue.webp', 2],
      ['dog/corrupt.jpg', 2],
      ['dog/nested/gray.jpeg', 2],
      ['dog/truncated.png', 2],
    ]);
  });

  it('rejects a missing root, a root without classes, and a class without images', () => {
    const missing = join(root, 'missing');
    assert.throws(() => listImageFolder(missing), (e: unknown) => e instanceof DatasetFileError && e.path === missing);
    const flat = join(root, 'flat');
    mkdirSync(flat);
    writeFileSync(join(flat, 'a.png'), readFileSync(path('Zebra', 'z.png')));
    assert.throws(() => listImageFolder(flat), /no class folders/);
    const withEmpty = join(root, 'with-empty');
    mkdirSync(join(withEmpty, 'full'), { recursive: true });
    mkdirSync(join(withEmpty, 'empty'));
    writeFileSync(join(withEmpty, 'full', 'a.png'), readFileSync(path('Zebra', 'z.png')));
    assert.throws(() => listImageFolder(withEmpty), /class folders without images.*: empty;/);
  });

  it('decodes a solid PNG to CHW of the requested size', async () => {
    const data = await decodeImage(path('cat', 'red.png'), { size: [7, 5], mode: 'resize', channels: 3 });
    assertPlanes(data, 7, 5, RED);
    const gray = await decodeImage(path('cat', 'red.png'), { size: [4, 6], mode: 'cover', channels: 1 });
    assertPlanes(gray, 4, 6, [luma(RED)]);
  });

  it('decodes JPEG (upper-case extension), WebP and grayscale JPEG', async () => {
    assertPlanes(await decodeImage(path('cat', 'red-upper.JPG'), { size: [3, 3], mode: 'resize', channels: 3 }), 3, 3, RED, 4);
    assertPlanes(await decodeImage(path('dog', 'blue.webp'), { size: [5, 5], mode: 'cover', channels: 3 }), 5, 5, BLUE);
    const gray = path('dog', 'nested', 'gray.jpeg');
    assertPlanes(await decodeImage(gray, { size: [4, 4], mode: 'resize', channels: 3 }), 4, 4, [90, 90, 90], 2);
    assertPlanes(await decodeImage(gray, { size: [4, 4], mode: 'resize', channels: 1 }), 4, 4, [90], 2);
  });

  it('drops alpha without compositing, as PIL does', async () => {
    const data = await decodeImage(path('cat', 'rgba.png'), { size: [12, 12], mode: 'center-crop', channels: 3 });
    assertPlanes(data, 12, 12, [10, 200, 30]);
    // Resizing must not see alpha either (sharp would otherwise premultiply by it).
    const small = await decodeImage(path('cat', 'rgba.png'), { size: [5, 3], mode: 'resize', channels: 3 });
    assertPlanes(small, 5, 3, [10, 200, 30]);
  });

  it('center-crops without scaling and pads with zeros, with torchvision rounding', async () => {
    // 20x10: left half black, right half white.
    const file = join(root, 'halves.png');
    await rawImage(20, 10, 3, (x) => (x < 10 ? [0, 0, 0] : [255, 255, 255])).png().toFile(file);
    const crop = await decodeImage(file, { size: [10, 10], mode: 'center-crop', channels: 1 });
    assert.deepEqual([...crop.subarray(0, 10)], [0, 0, 0, 0, 0, 255, 255, 255, 255, 255]);
    // Crop 7 wide: offset round(13 / 2) = round(6.5) = 6 (half to even), so columns 6..12.
    const odd = await decodeImage(file, { size: [1, 7], mode: 'center-crop', channels: 1 });
    assert.deepEqual([...odd], [0, 0, 0, 0, 255, 255, 255]);
    // Larger than the image: 1 row of zeros above, 1 below; 2 columns each side.
    const pad = await decodeImage(file, { size: [12, 24], mode: 'center-crop', channels: 1 });
    assert.equal(pad.length, 12 * 24);
    assert.deepEqual([...pad.subarray(0, 24)], new Array(24).fill(0));
    assert.deepEqual([...pad.subarray(24, 48)], [0, 0, ...new Array(10).fill(0), ...new Array(10).fill(255), 0, 0]);
    assert.deepEqual([...pad.subarray(11 * 24)], new Array(24).fill(0));
  });

  it('cover keeps the aspect ratio and crops the centre', async () => {
    const file = join(root, 'halves.png');
    const data = await decodeImage(file, { size: [4, 4], mode: 'cover', channels: 1 });
    // 20x10 -> 8x4, centre 4 columns: 2 dark then 2 light (edge columns blend).
    assert.equal(data.length, 16);
    assert.ok(data[0]! < 64 && data[3]! > 191, `row 0: ${[...data.subarray(0, 4)]}`);
  });

  it('rejects a corrupt file with its path', async () => {
    const bad = path('dog', 'corrupt.jpg');
    await assert.rejects(decodeImage(bad, { size: [4, 4] }), (e: unknown) => {
      assert.ok(e instanceof DatasetFileError);
      assert.equal(e.path, bad);
      assert.match(e.message, /expected a JPEG, PNG or WebP file, found 600 bytes starting 0d 6e cf 30/);
      return true;
    });
    await assert.rejects(decodeImage(path('cat', 'red.png'), { size: [0, 4] }), RangeError);
  });

  it('batch-decodes a folder, reporting bad files by path and keeping order', async () => {
    const { items } = listImageFolder(path());
    const results = await decodeImages(
      items.map((i) => i.path),
      { size: [6, 6], mode: 'cover', channels: 3, concurrency: 3 },
    );
    assert.equal(results.length, items.length);
    results.forEach((r, i) => assert.equal(r.path, items[i]!.path));
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(failed.map((r) => r.path), [path('dog', 'corrupt.jpg'), path('dog', 'truncated.png')]);
    for (const r of failed) {
      if (r.ok) continue;
      assert.ok(r.error instanceof DatasetFileError);
      assert.ok(r.error.message.startsWith(r.path));
    }
    assert.match(failed[1]!.ok ? '' : failed[1]!.error.message, /expected a complete PNG file, found a corrupt or truncated one/);
    for (const r of results) if (r.ok) assert.equal(r.data.length, 3 * 6 * 6);
    const ok = results.filter((r) => r.ok);
    assert.equal(ok.length, 6);
  });

  it('batch-decodes an empty list and a missing file', async () => {
    assert.deepEqual(await decodeImages([], { size: [2, 2] }), []);
    const [r] = await decodeImages([join(root, 'gone.png')], { size: [2, 2] });
    assert.ok(r && !r.ok);
    assert.match(r.error.message, /cannot read image/);
  });
});

describe('encodePng', () => {
  it('writes gray and RGB PNGs that decode to the same pixels', async () => {
    const gray = Uint8Array.from({ length: 5 * 7 }, (_, i) => (i * 37) % 256);
    const png = await encodePng({ data: gray, channels: 1, height: 5, width: 7 });
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 7, 5, 1]);
    assert.deepEqual([...(await sharp(png).extractChannel(0).raw().toBuffer())], [...gray]);
    // CHW planes in, interleaved pixels out: pixel i is (r[i], g[i], b[i])
    const chw = Uint8Array.from({ length: 3 * 4 * 3 }, (_, i) => (i * 11) % 256);
    const rgb = await sharp(await encodePng({ data: chw, channels: 3, height: 4, width: 3 })).raw().toBuffer({ resolveWithObject: true });
    assert.equal(rgb.info.channels, 3);
    const plane = 12;
    const expected = Array.from({ length: 3 * plane }, (_, j) => chw[(j % 3) * plane + Math.floor(j / 3)]);
    assert.deepEqual([...rgb.data], expected);
    // and back through decodeImage: the same planes
    const file = join(tmpdir(), `convkit-png-${process.pid}.png`);
    writeFileSync(file, await encodePng({ data: chw, channels: 3, height: 4, width: 3 }));
    try {
      assert.deepEqual([...await decodeImage(file, { size: [4, 3], mode: 'center-crop' })], [...chw]);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('names what is wrong with the image it is given', async () => {
    await assert.rejects(encodePng({ data: new Uint8Array(8), channels: 2, height: 2, width: 2 }), /encodePng: channels must be 1 or 3, got 2/);
    await assert.rejects(encodePng({ data: new Uint8Array(8), channels: 1, height: 2, width: 2 }), /encodePng: 1x2x2 needs 4 bytes, got 8/);
    await assert.rejects(encodePng({ data: new Uint8Array(0), channels: 1, height: 0, width: 2 }), /height and width must be positive integers, got 0x2/);
  });
});
