// The page: loads the served model with onnxruntime-web (WebAssembly, SIMD; threads when the page
// is cross-origin isolated, which `convkit web` arranges with COOP/COEP headers), takes an image
// dropped, pasted, chosen or drawn, and shows the top-5 classes with the time taken. The
// preprocessing and class names come from the model's metadata, which `convkit web` serves as
// JSON (model.json) because onnxruntime-web does not expose an ONNX file's metadata_props.
// @ts-check
import * as ort from './ort/ort.wasm.min.mjs';
import { checkInfo, MAX_SIDE, preprocess, softmax, topK } from './preprocess.js';

/** @typedef {import('./preprocess.js').ModelInfo & { modelName: string | null }} Info */
/** @typedef {import('./preprocess.js').RgbaImage} RgbaImage */

const TOP = 5;
const root = document.documentElement;
/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const status = $('status');

/**
 * What the page did last, for scripts and for convkit's browser test: `runs` counts the
 * classifications, `last` holds the full softmax of the latest one.
 * @type {{ info: Info | null, threads: number, runs: number, error: string | null,
 *   last: { source: string, probabilities: number[], top: import('./preprocess.js').Prediction[],
 *     preprocessMs: number, inferenceMs: number } | null }}
 */
const hook = { info: null, threads: 0, runs: 0, error: null, last: null };
Object.assign(window, { convkit: hook });

/** @param {string} message */
function showError(message) {
  hook.error = message;
  root.dataset.state = 'error';
  status.setAttribute('role', 'alert');
  status.textContent = message;
}

/** @param {number} ms */
const formatMs = (ms) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1)) + ' ms';

async function fetchInfo() {
  const res = await fetch('model.json');
  if (!res.ok) throw new Error(`model.json: the server answered ${res.status} ${res.statusText}`);
  return /** @type {{ file: string, bytes: number, info: Info }} */ (await res.json());
}

async function main() {
  const { file, bytes, info } = await fetchInfo();
  const problem = checkInfo(info);
  if (problem) throw new Error(`${file}: ${problem}`);
  hook.info = info;
  const [channels, height, width] = /** @type {number[]} */ (info.inputSize);

  // threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages
  const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  hook.threads = threads;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create('model.onnx', { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const loadMs = performance.now() - t0;
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  // a model exported with a fixed batch is fed the image that many times
  const meta = session.inputMetadata[0];
  const batch = meta && meta.isTensor && typeof meta.shape[0] === 'number' && meta.shape[0] > 0 ? meta.shape[0] : 1;

  const classes = info.classNames;
  $('model-summary').textContent = `${info.modelName ?? file}: ${channels === 1 ? 'gray' : 'RGB'} ${height}×${width} input` +
    `${classes ? `, ${classes.length} classes` : ''} (${file}, ${(bytes / 1e6).toFixed(1)} MB, loaded in ${formatMs(loadMs)}).`;
  $('backend').textContent = `onnxruntime-web ${ort.env.versions.web ?? ''}, WebAssembly SIMD, ${threads} thread${threads > 1 ? 's' : ''}` +
    (self.crossOriginIsolated ? '' : ' (the page is not cross-origin isolated, so no threads)') + '.';

  const seen = /** @type {HTMLCanvasElement} */ ($('seen-canvas'));
  seen.width = width;
  seen.height = height;
  $('seen-caption').textContent = `What the model sees (${height}×${width}${channels === 1 ? ', gray' : ''})`;

  /** @param {Float32Array} x the preprocessed input */
  function showSeen(x) {
    const mean = /** @type {number[]} */ (info.mean);
    const std = /** @type {number[]} */ (info.std);
    const g = /** @type {CanvasRenderingContext2D} */ (seen.getContext('2d'));
    const img = g.createImageData(width, height);
    const n = width * height;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) {
        const c = channels === 1 ? 0 : k;
        img.data[4 * i + k] = (x[c * n + i] * std[c] + mean[c]) * 255;
      }
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    $('seen').hidden = false;
  }

  /** @param {import('./preprocess.js').Prediction[]} top */
  function showResults(top) {
    const list = $('results');
    list.replaceChildren(...top.map((p) => {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = p.label;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.style.width = `${(100 * p.probability).toFixed(2)}%`;
      bar.append(fill);
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = `${(100 * p.probability).toFixed(1)}%`;
      li.append(label, bar, value);
      return li;
    }));
  }

  /**
   * @param {RgbaImage} image
   * @param {string} source what the image came from, for the status line
   * @param {boolean} [drawn] from the drawing pad, which already shows what the model sees
   */
  async function classify(image, source, drawn = false) {
    root.dataset.state = 'busy';
    const t0 = performance.now();
    const x = preprocess(image, info);
    const t1 = performance.now();
    let feed = x;
    if (batch > 1) {
      feed = new Float32Array(batch * x.length);
      for (let i = 0; i < batch; i++) feed.set(x, i * x.length);
    }
    const out = await session.run({ [inputName]: new ort.Tensor('float32', feed, [batch, channels, height, width]) });
    const t2 = performance.now();
    const logits = out[outputName];
    const probabilities = softmax(/** @type {Float32Array} */ (logits.data).subarray(0, logits.dims[1]));
    const top = topK(probabilities, TOP, classes);
    if (drawn) $('seen').hidden = true;
    else showSeen(x);
    showResults(top);
    $('timing').textContent = `Inference ${formatMs(t2 - t1)}, preprocessing ${formatMs(t1 - t0)}.`;
    status.setAttribute('role', 'status');
    status.textContent = `${source}: ${top[0].label}, ${(100 * top[0].probability).toFixed(1)}%.`;
    hook.error = null;
    hook.last = { source, probabilities, top, preprocessMs: t1 - t0, inferenceMs: t2 - t1 };
    hook.runs += 1;
    root.dataset.runs = String(hook.runs);
    root.dataset.state = 'done';
  }

  // One classification at a time; while one runs, only the newest waiting image is kept.
  /** @type {(() => Promise<void>) | null} */
  let pending = null;
  let running = false;
  /** @param {() => Promise<void>} job */
  async function submit(job) {
    pending = job;
    if (running) return;
    running = true;
    while (pending) {
      const next = pending;
      pending = null;
      try {
        await next();
      } catch (e) {
        showError(e instanceof Error ? e.message : String(e));
      }
    }
    running = false;
  }

  /**
   * The pixels of an image file as the browser decodes it, without colour management (as
   * convkit's decoder, which keeps the stored values).
   * @param {Blob} blob
   * @param {string} name
   * @returns {Promise<RgbaImage>}
   */
  async function decode(blob, name) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch {
      throw new Error(`${name}: not an image this browser can decode (expected PNG, JPEG, WebP, GIF or BMP)`);
    }
    const { width: w, height: h } = bitmap;
    if (w > MAX_SIDE || h > MAX_SIDE) {
      bitmap.close();
      throw new Error(`${name}: ${w}×${h} pixels is larger than the page takes (${MAX_SIDE} a side)`);
    }
    const canvas = new OffscreenCanvas(w, h);
    const g = /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
    g.drawImage(bitmap, 0, 0);
    bitmap.close();
    return g.getImageData(0, 0, w, h);
  }

  /** @param {File | null | undefined} file */
  function takeFile(file) {
    if (!file) return;
    const name = file.name || 'the pasted image';
    void submit(async () => classify(await decode(file, name), name));
  }

  const input = /** @type {HTMLInputElement} */ ($('file-input'));
  input.disabled = false;
  input.addEventListener('change', () => {
    takeFile(input.files?.[0]);
    // choosing the same file again fires change again
    input.value = '';
  });

  const zone = $('drop-zone');
  /** @param {DataTransfer | null} dt */
  const imageIn = (dt) => [...(dt?.files ?? [])].find((f) => f.type.startsWith('image/') || f.type === '') ?? dt?.files[0];
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) zone.classList.remove('over');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = imageIn(e.dataTransfer);
    if (file) takeFile(file);
    else showError('Nothing to classify in what was dropped: drop an image file.');
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    if (!item) return;
    e.preventDefault();
    takeFile(item.getAsFile());
  });

  if (channels === 1 && height === 28 && width === 28) setUpDrawing(submit, classify);

  root.dataset.state = 'ready';
  status.textContent = 'Ready: give it an image.';
}

/**
 * The 28×28 drawing pad of gray 28×28 models (Fashion-MNIST, MNIST): white strokes on black,
 * classified as they are drawn (at most once a frame).
 * @param {(job: () => Promise<void>) => Promise<void>} submit
 * @param {(image: RgbaImage, source: string, drawn: boolean) => Promise<void>} classify
 */
function setUpDrawing(submit, classify) {
  const canvas = /** @type {HTMLCanvasElement} */ ($('draw-canvas'));
  const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
  const clear = () => {
    g.fillStyle = '#000';
    g.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  g.strokeStyle = '#fff';
  g.fillStyle = '#fff';
  g.lineWidth = 2.5;
  g.lineCap = 'round';
  g.lineJoin = 'round';
  $('draw').hidden = false;

  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      const image = g.getImageData(0, 0, canvas.width, canvas.height);
      void submit(() => classify(image, 'The drawing', true));
    });
  };
  /** @param {PointerEvent} e */
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * canvas.width, ((e.clientY - r.top) / r.height) * canvas.height];
  };
  /** @type {number[] | null} */
  let last = null;
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    g.beginPath();
    g.arc(last[0], last[1], g.lineWidth / 2, 0, 2 * Math.PI);
    g.fill();
    schedule();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    g.beginPath();
    g.moveTo(last[0], last[1]);
    g.lineTo(p[0], p[1]);
    g.stroke();
    last = p;
    schedule();
  });
  const end = () => { last = null; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => {
    clear();
    g.fillStyle = '#fff';
    $('results').replaceChildren();
    $('timing').textContent = '';
    status.textContent = 'Cleared.';
  });
}

main().catch((e) => showError(`Could not load the model: ${e instanceof Error ? e.message : String(e)}`));
