// Image folders (torchvision's ImageFolder layout), image decoding and PNG encoding through sharp
// (libvips, an optional dependency: loaded on first use).
//
// Decoded images are CHW uint8 (planes, not interleaved pixels), so the data layer can copy
// them straight into an NCHW tensor. Colour handling follows PIL, which torchvision uses, so
// that a model trained there sees the same pixels here: alpha is dropped (not composited), and
// grayscale is ITU-R 601-2 luma computed with PIL's integer weights.

import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import type { Dirent } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname, join, resolve } from 'node:path';
import type { KernelEnum, Sharp, SharpOptions } from 'sharp';
import { pythonRound } from '../engine/math.js';
import { DatasetFileError } from './idx.js';
import { readInputFileAsync } from './files.js';

export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.jpg', '.jpeg', '.png', '.webp']);

export interface ImageItem {
  path: string;
  label: number;
}

export interface ImageFolder {
  root: string;
  /** Sub-folder names sorted by code point, as torchvision's ImageFolder sorts them; label = index. */
  classes: string[];
  /** Sorted by class, then by path. */
  items: ImageItem[];
}

function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

// Hidden entries (.git, .ipynb_checkpoints, ._foo from macOS) are never classes or samples.
function isHidden(name: string): boolean {
  return name.startsWith('.');
}

// Dirent.isDirectory() is false for a symlink to a directory; torchvision follows links.
function isDir(dir: string, entry: Dirent): boolean {
  if (entry.isDirectory()) return true;
  return entry.isSymbolicLink() && statSafe(join(dir, entry.name))?.isDirectory() === true;
}

function isFile(dir: string, entry: Dirent): boolean {
  if (entry.isFile()) return true;
  return entry.isSymbolicLink() && statSafe(join(dir, entry.name))?.isFile() === true;
}

function statSafe(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function entries(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !isHidden(e.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// All image files under `dir`, depth first in sorted order; `seen` breaks symlink cycles.
function collectImages(dir: string, seen: Set<string>, out: string[]): void {
  const real = realpathSync(dir);
  if (seen.has(real)) return;
  seen.add(real);
  for (const e of entries(dir)) {
    const path = join(dir, e.name);
    if (isDir(dir, e)) collectImages(path, seen, out);
    else if (isFile(dir, e) && isImageFile(e.name)) out.push(path);
  }
}

/** Every image file (.jpg .jpeg .png .webp) under dir, sorted depth first; hidden entries skipped, symlink cycles broken. */
export function listImages(dir: string): string[] {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new DatasetFileError(abs, 'not a directory: expected a folder of images');
  const out: string[] = [];
  collectImages(abs, new Set(), out);
  return out;
}

/**
 * Lists an image-classification folder: `root/<class>/**\/*.{jpg,jpeg,png,webp}`. Classes are
 * the sorted sub-folder names; every class must hold at least one image, as in torchvision.
 */
export function listImageFolder(root: string): ImageFolder {
  const abs = resolve(root);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new DatasetFileError(abs, 'image folder not found: expected a directory with one sub-folder per class');
  }
  const classes = entries(abs).filter((e) => isDir(abs, e)).map((e) => e.name);
  if (classes.length === 0) {
    throw new DatasetFileError(abs, 'no class folders: expected one sub-folder per class, found none');
  }
  const items: ImageItem[] = [];
  const empty: string[] = [];
  classes.forEach((name, label) => {
    const paths: string[] = [];
    collectImages(join(abs, name), new Set(), paths);
    if (paths.length === 0) empty.push(name);
    for (const path of paths) items.push({ path, label });
  });
  if (empty.length > 0) {
    throw new DatasetFileError(
      abs,
      `class folders without images (${IMAGE_EXTENSIONS.join(' ')}): ${empty.join(', ')}; ` +
        'expected at least one image in each',
    );
  }
  return { root: abs, classes, items };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * - `resize`: stretch to exactly [h, w], ignoring the aspect ratio.
 * - `cover`: scale, keeping the aspect ratio, until [h, w] is covered, then crop the centre
 *   (torchvision's Resize(min(h, w)) + CenterCrop([h, w]) for the common square case).
 * - `center-crop`: no scaling; cut the centre [h, w] out, padding with zeros where the image is
 *   smaller (torchvision's CenterCrop, same rounding).
 */
export type ResizeMode = 'resize' | 'center-crop' | 'cover';

// sharp's kernels, spelled out so that convkit's types do not need sharp installed (passing one to
// sharp's resize checks that they are still sharp's).
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3' | 'mks2013' | 'mks2021';

export interface DecodeOptions {
  /** Output [height, width]. */
  size: readonly [number, number];
  mode?: ResizeMode;
  /** 1: luma as PIL computes it; 3: RGB. Default 3. */
  channels?: 1 | 3;
  /** Resampling kernel; default 'linear' (antialiased bilinear, close to PIL's BILINEAR). */
  kernel?: ResizeKernel;
  /** Apply the EXIF orientation. Default false, like PIL and torchvision. */
  autoOrient?: boolean;
}

export interface BatchDecodeOptions extends DecodeOptions {
  /** Images decoded at once; default os.availableParallelism(). */
  concurrency?: number;
}

export type DecodeResult =
  | { ok: true; path: string; data: Uint8Array }
  | { ok: false; path: string; error: Error };

type SharpFactory = (input?: Buffer, options?: SharpOptions) => Sharp;

let sharpPromise: Promise<SharpFactory> | undefined;

// Loaded on first use, so importing convkit/io never loads libvips unless images are decoded or
// encoded, and users who never do need not install it.
function loadSharp(): Promise<SharpFactory> {
  sharpPromise ??= import('sharp').then(
    (m) => m.default as SharpFactory,
    (err: unknown) => {
      sharpPromise = undefined;
      throw new Error(`reading or writing images needs the optional 'sharp' package (npm install sharp): ${(err as Error).message}`, {
        cause: err,
      });
    },
  );
  return sharpPromise;
}

interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function toRaw(img: Sharp): Promise<RawImage> {
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({
    resolveWithObject: true,
  });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The most pixels an image may have: sharp's default limit (16383 x 16383), as PIL's bomb check. */
export const MAX_IMAGE_PIXELS = 0x3fff * 0x3fff;
/** The largest image file read (a 16383 x 16383 PNG of noise is about 800 MB). */
export const MAX_IMAGE_FILE_BYTES = 1 << 30;

/** An image whose header declares more pixels than MAX_IMAGE_PIXELS: refused before decoding. */
class ImageTooLarge extends Error {}

// sharp resizes with premultiplied alpha; PIL's convert('RGB') drops alpha before anything else.
// Dropping it first keeps the colour of transparent pixels, as PIL does.
async function openDroppingAlpha(sharp: SharpFactory, input: Buffer, options: SharpOptions, maxPixels = MAX_IMAGE_PIXELS): Promise<Sharp> {
  // the header alone, unlimited, so that an image over the limit is reported with its size
  const meta = await sharp(input, { ...options, limitInputPixels: false }).metadata();
  const { width = 0, height = 0 } = meta;
  if (width * height > maxPixels) {
    throw new ImageTooLarge(`too large: ${width} x ${height} pixels, limit ${maxPixels}${maxPixels === MAX_IMAGE_PIXELS ? ` (${0x3fff} x ${0x3fff})` : ''}`);
  }
  const img = sharp(input, { ...options, limitInputPixels: maxPixels });
  if (!meta.hasAlpha) return img;
  const raw = await toRaw(img);
  return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 3 } });
}

function checkOptions(options: DecodeOptions): void {
  const [h, w] = options.size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new RangeError(`decodeImage: size must be two positive integers [h, w], got [${h}, ${w}]`);
  }
  if (options.channels !== undefined && options.channels !== 1 && options.channels !== 3) {
    throw new RangeError(`decodeImage: channels must be 1 or 3, got ${String(options.channels)}`);
  }
}

async function decodeRaw(input: Buffer, options: DecodeOptions, maxPixels?: number): Promise<RawImage> {
  const sharp = await loadSharp();
  const [h, w] = options.size;
  const mode = options.mode ?? 'resize';
  const kernel = options.kernel ?? 'linear';
  const img = await openDroppingAlpha(sharp, input, { failOn: 'error', autoOrient: options.autoOrient ?? false }, maxPixels);
  if (mode === 'resize') img.resize(w, h, { fit: 'fill', kernel });
  else if (mode === 'cover') img.resize(w, h, { fit: 'cover', position: 'centre', kernel });
  return toRaw(img);
}


// Where output row/column 0 reads from in the source; negative means zero padding first.
function cropOffset(src: number, out: number): number {
  return src >= out ? pythonRound((src - out) / 2) : -Math.floor((out - src) / 2);
}

/** Interleaved HWC (1 or 3 channels) to planar CHW, cropping/padding around the centre if sizes differ. */
function toChw(raw: RawImage, h: number, w: number, channels: 1 | 3): Uint8Array {
  const out = new Uint8Array(channels * h * w);
  const oy = cropOffset(raw.height, h);
  const ox = cropOffset(raw.width, w);
  const plane = h * w;
  for (let y = 0; y < h; y++) {
    const sy = y + oy;
    if (sy < 0 || sy >= raw.height) continue;
    for (let x = 0; x < w; x++) {
      const sx = x + ox;
      if (sx < 0 || sx >= raw.width) continue;
      writePixel(raw, (sy * raw.width + sx) * raw.channels, out, y * w + x, plane, channels);
    }
  }
  return out;
}

function writePixel(raw: RawImage, s: number, out: Uint8Array, o: number, plane: number, channels: 1 | 3): void {
  const d = raw.data;
  const r = d[s]!;
  const g = raw.channels === 3 ? d[s + 1]! : r;
  const b = raw.channels === 3 ? d[s + 2]! : r;
  if (channels === 1) {
    // PIL's RGB -> L: exact for gray input, since the weights sum to 65536.
    out[o] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  } else {
    out[o] = r;
    out[o + plane] = g;
    out[o + 2 * plane] = b;
  }
}

function readInput(path: string): Promise<Buffer> {
  return readInputFileAsync(path, {
    what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES, fail: (m, cause) => new DatasetFileError(path, `cannot read image: ${m}`, { cause }),
  });
}

type ImageFormat = 'JPEG' | 'PNG' | 'WebP';

// Sniffed from content: a .jpg that holds a PNG decodes fine, and errors name what was found.
function sniffFormat(b: Buffer): ImageFormat | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'JPEG';
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'PNG';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'WebP';
  return undefined;
}

const LOADER_TAGS: Record<ImageFormat, string> = { JPEG: 'vipsjpeg', PNG: 'vipspng', WebP: 'webp' };

// libvips keeps one error buffer for all threads, so a message can repeat lines or carry lines
// from another image decoded at the same time: keep unique lines not tagged with another loader.
function cleanVipsMessage(message: string, format: ImageFormat): string {
  const others = Object.entries(LOADER_TAGS).filter(([f]) => f !== format).map(([, tag]) => tag);
  const lines = message.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const own = lines.filter((l) => !others.some((tag) => l.toLowerCase().includes(tag)));
  return [...new Set(own.length > 0 ? own : lines)].join('; ');
}

function decodeError(path: string, input: Buffer, err: unknown): DatasetFileError {
  const format = sniffFormat(input);
  const message = (err as Error).message;
  if (err instanceof ImageTooLarge) return new DatasetFileError(path, `cannot decode image: ${message}`, { cause: err });
  if (format === undefined) {
    const head = [...input.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    return new DatasetFileError(
      path,
      `cannot decode image: expected a JPEG, PNG or WebP file, found ${input.length} bytes starting ${head || '(empty)'}`,
      { cause: err },
    );
  }
  return new DatasetFileError(
    path,
    `cannot decode image: expected a complete ${format} file, found a corrupt or truncated one ` +
      `(${input.length} bytes): ${cleanVipsMessage(message, format)}`,
    { cause: err },
  );
}

/**
 * Decodes a JPEG, PNG or WebP file to CHW uint8 of `channels x size[0] x size[1]`.
 * Throws DatasetFileError (with `.path`) when the file cannot be read or decoded.
 */
export async function decodeImage(path: string, options: DecodeOptions): Promise<Uint8Array> {
  checkOptions(options);
  const input = await readInput(path);
  let raw: RawImage;
  try {
    raw = await decodeRaw(input, options);
  } catch (err) {
    throw decodeError(path, input, err);
  }
  if (raw.channels !== 1 && raw.channels !== 3) {
    throw new DatasetFileError(path, `decoded to ${raw.channels} channels, expected 1 or 3`);
  }
  return toChw(raw, options.size[0], options.size[1], options.channels ?? 3);
}

/**
 * decodeImage for bytes already in memory (an upload): only JPEG, PNG and WebP, recognised by
 * their signature before sharp sees them (no other format libvips knows, such as SVG, is
 * rendered); an image whose header declares more than `maxPixels` (default MAX_IMAGE_PIXELS) is
 * refused before decoding. Errors are DatasetFileError naming `name`.
 */
export async function decodeImageBytes(input: Buffer, options: DecodeOptions & { maxPixels?: number }, name = 'image'): Promise<Uint8Array> {
  checkOptions(options);
  if (sniffFormat(input) === undefined) throw decodeError(name, input, new Error('unknown format'));
  let raw: RawImage;
  try {
    raw = await decodeRaw(input, options, options.maxPixels);
  } catch (err) {
    throw decodeError(name, input, err);
  }
  if (raw.channels !== 1 && raw.channels !== 3) {
    throw new DatasetFileError(name, `decoded to ${raw.channels} channels, expected 1 or 3`);
  }
  return toChw(raw, options.size[0], options.size[1], options.channels ?? 3);
}

/**
 * Decodes many images with at most `concurrency` in flight. Never rejects for a bad image:
 * each result says ok with the data, or not ok with the path and the error, in input order.
 */
export async function decodeImages(paths: readonly string[], options: BatchDecodeOptions): Promise<DecodeResult[]> {
  checkOptions(options);
  const results = new Array<DecodeResult>(paths.length);
  const limit = Math.max(1, Math.min(options.concurrency ?? availableParallelism(), paths.length));
  let next = 0;
  // Each runner takes the next index until none are left: a simple bounded pool, no queue.
  const runner = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      results[i] = await decodeOne(paths[i]!, options);
    }
  };
  await Promise.all(Array.from({ length: limit }, runner));
  return results;
}

async function decodeOne(path: string, options: DecodeOptions): Promise<DecodeResult> {
  try {
    return { ok: true, path, data: await decodeImage(path, options) };
  } catch (err) {
    return { ok: false, path, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** An image as decodeImage gives it: uint8 planes, channel after channel (CHW). */
export interface ChwImage {
  data: Uint8Array;
  /** 1 (gray) or 3 (RGB). */
  channels: number;
  height: number;
  width: number;
}

/** Encodes a CHW uint8 image (1 channel: gray, 3: RGB) as PNG bytes. */
export async function encodePng(image: ChwImage): Promise<Buffer> {
  const { data, channels, height, width } = image;
  if (channels !== 1 && channels !== 3) throw new RangeError(`encodePng: channels must be 1 or 3, got ${channels}`);
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new RangeError(`encodePng: height and width must be positive integers, got ${height}x${width}`);
  }
  if (data.length !== channels * height * width) {
    throw new RangeError(`encodePng: ${channels}x${height}x${width} needs ${channels * height * width} bytes, got ${data.length}`);
  }
  const sharp = await loadSharp();
  const img = sharp(toHwc(data, channels, height * width), { raw: { width, height, channels } });
  // one band would otherwise be written as RGB
  return (channels === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
}

// sharp takes interleaved pixels.
function toHwc(chw: Uint8Array, channels: number, plane: number): Buffer {
  const hwc = Buffer.alloc(chw.length);
  for (let k = 0; k < channels; k++) for (let i = 0; i < plane; i++) hwc[i * channels + k] = chw[k * plane + i]!;
  return hwc;
}
