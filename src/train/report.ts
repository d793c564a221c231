// report.html: one self-contained page per run (inline SVG and PNG data URIs; no scripts, no
// fonts, no network), so it can be mailed or archived with the checkpoints.
import type { ClassReport, EpochRecord } from './metrics.js';

export interface MisclassifiedImage {
  /** index in the evaluated split */
  index: number;
  label: string;
  predicted: string;
  /** softmax probability of the predicted class */
  confidence: number;
  /** a PNG data URI */
  image: string;
}

export interface ReportData {
  title: string;
  /** the recipe actually used */
  recipe: object;
  history: EpochRecord[];
  /** learning rate sampled over the run: [step, lr] */
  lrTrace: [number, number][];
  classNames: readonly string[];
  /** rows: true class, columns: predicted class */
  confusion: number[][];
  classReport: ClassReport;
  misclassified: MisclassifiedImage[];
  /** Grad-CAM of the predicted class over the first misclassified images (image: the overlay) */
  misclassifiedCam?: MisclassifiedImage[];
  /** the layer those maps come from */
  camLayer?: string;
  /** why there are no maps, when Grad-CAM failed on this model */
  camError?: string;
  /** final numbers shown at the top */
  summary: Record<string, string | number>;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

const fmt = (v: number): string => {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  if (a >= 1e-3) return String(Number(v.toPrecision(3)));
  return v.toExponential(1);
};

/** About five round tick values within [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, integer = false): number[] {
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A line chart as an inline SVG with axes, ticks and a legend. */
export function lineChart(title: string, series: Series[], xLabel: string, o: { width?: number; height?: number } = {}): string {
  const W = o.width ?? 460;
  const H = o.height ?? 280;
  const m = { l: 56, r: 14, t: 44, b: 40 };
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const id = `chart-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  if (pts.length === 0) return `<svg class="chart" id="${id}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg"><text x="${W / 2}" y="${H / 2}" text-anchor="middle">${escapeHtml(title)}: no data</text></svg>`;
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg class="chart" id="${id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(title)}</text>`);
  for (const yv of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(yv).toFixed(1)}" y2="${sy(yv).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 4}" y="${(sy(yv) + 4).toFixed(1)}" text-anchor="end">${fmt(yv)}</text>`);
  }
  const integerX = pts.every(([x]) => Number.isInteger(x));
  for (const xv of niceTicks(x0, x1, integerX)) {
    parts.push(`<text x="${sx(xv).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle">${fmt(xv)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (p.length === 0) return;
    const d = p.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"><title>${escapeHtml(s.name)}</title></path>`);
    if (p.length <= 60) for (const [x, y] of p) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"><title>${escapeHtml(s.name)} ${fmt(x)}: ${fmt(y)}</title></circle>`);
    // one legend row between the title and the plot, so it never hides a curve
    const lx = m.l + series.slice(0, i).reduce((a, q) => a + 24 + 6.5 * q.name.length, 0);
    parts.push(`<rect x="${lx.toFixed(1)}" y="25" width="10" height="10" fill="${s.color}"/><text x="${(lx + 14).toFixed(1)}" y="34">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** The confusion matrix as an SVG heat map (rows: true class, columns: predicted). */
export function confusionHeatmap(matrix: number[][], names: readonly string[]): string {
  const n = matrix.length;
  const cell = n <= 12 ? 40 : n <= 30 ? 18 : 8;
  const label = n <= 30;
  const left = label ? 110 : 20;
  const top = label ? 110 : 20;
  const W = left + n * cell + 10;
  const H = top + n * cell + 30;
  const rowSums = matrix.map((r) => r.reduce((a, b) => a + b, 0) || 1);
  const parts: string[] = [];
  parts.push(`<svg class="confusion" id="confusion-matrix" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="10">`);
  for (let t = 0; t < n; t++) {
    for (let p = 0; p < n; p++) {
      const v = matrix[t][p];
      const f = v / rowSums[t];
      // white -> deep blue by the fraction of the true class
      const c = (a: number, b: number): number => Math.round(a + (b - a) * Math.sqrt(f));
      const fill = `rgb(${c(255, 8)},${c(255, 48)},${c(255, 107)})`;
      parts.push(`<rect x="${left + p * cell}" y="${top + t * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff"><title>true ${escapeHtml(names[t] ?? String(t))}, predicted ${escapeHtml(names[p] ?? String(p))}: ${v}</title></rect>`);
      if (cell >= 30 && v > 0) parts.push(`<text x="${left + p * cell + cell / 2}" y="${top + t * cell + cell / 2 + 4}" text-anchor="middle" fill="${f > 0.5 ? '#fff' : '#000'}">${v}</text>`);
    }
    if (label) {
      parts.push(`<text x="${left - 4}" y="${top + t * cell + cell / 2 + 4}" text-anchor="end">${escapeHtml(names[t] ?? String(t))}</text>`);
      const x = left + t * cell + cell / 2;
      parts.push(`<text x="${x}" y="${top - 4}" transform="rotate(-60 ${x} ${top - 4})">${escapeHtml(names[t] ?? String(t))}</text>`);
    }
  }
  parts.push(`<text x="${left + (n * cell) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">predicted class (rows: true class)</text>`);
  parts.push('</svg>');
  return parts.join('');
}

function classTable(r: ClassReport): string {
  const f = (v: number): string => (100 * v).toFixed(2);
  const rows = r.classes.map((c) => `<tr><td>${escapeHtml(c.name)}</td><td>${f(c.precision)}</td><td>${f(c.recall)}</td><td>${f(c.f1)}</td><td>${c.support}</td></tr>`);
  rows.push(`<tr class="avg"><td>macro avg</td><td>${f(r.macro.precision)}</td><td>${f(r.macro.recall)}</td><td>${f(r.macro.f1)}</td><td>${r.total}</td></tr>`);
  rows.push(`<tr class="avg"><td>weighted avg</td><td>${f(r.weighted.precision)}</td><td>${f(r.weighted.recall)}</td><td>${f(r.weighted.f1)}</td><td>${r.total}</td></tr>`);
  return `<table id="class-report"><thead><tr><th>class</th><th>precision %</th><th>recall %</th><th>F1 %</th><th>support</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function misclassifiedGrid(items: MisclassifiedImage[], id = 'misclassified', what = 'test image'): string {
  if (items.length === 0) return '<p>No misclassified images.</p>';
  const cells = items.map((m) => `<figure class="mis"><img src="${m.image}" alt="${what} ${m.index}" width="56" height="56"><figcaption>#${m.index}<br>true: ${escapeHtml(m.label)}<br>pred: ${escapeHtml(m.predicted)} (${(100 * m.confidence).toFixed(0)}%)</figcaption></figure>`);
  return `<div id="${id}" class="grid">${cells.join('')}</div>`;
}

function camSection(d: ReportData, evalName: string): string {
  if (d.camError) return `<h2>Grad-CAM of misclassified ${evalName} images</h2>\n<p>Not available for this model: ${escapeHtml(d.camError)}</p>`;
  if (!d.misclassifiedCam || d.misclassifiedCam.length === 0) return '';
  const layer = d.camLayer ? ` (layer ${escapeHtml(d.camLayer)})` : '';
  return `<h2>Grad-CAM of misclassified ${evalName} images</h2>
<p>Where the model found the evidence for the class it wrongly predicted${layer}: red is strong, blue weak.</p>
${misclassifiedGrid(d.misclassifiedCam, 'misclassified-gradcam', 'Grad-CAM of test image')}`;
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}tr.avg td{font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:12px}.grid{display:flex;flex-wrap:wrap;gap:8px}
figure.mis{margin:0;width:120px;font-size:11px;text-align:center}figure.mis img{image-rendering:pixelated;border:1px solid #ccc}
pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}`;

/** Renders the report page. */
export function renderReport(d: ReportData): string {
  const h = d.history;
  const ep = (k: keyof EpochRecord): [number, number][] => h.map((r) => [r.epoch, r[k] as number]);
  const pct = (k: keyof EpochRecord): [number, number][] => h.map((r) => [r.epoch, 100 * (r[k] as number)]);
  const evalName = h[0]?.evalSplit === 'val' ? 'validation' : 'test';
  const loss = lineChart('Loss', [
    { name: 'train', color: '#1f77b4', points: ep('trainLoss') },
    { name: evalName, color: '#d62728', points: ep('valLoss') },
    ...(h.some((r) => r.emaLoss !== null) ? [{ name: `EMA ${evalName}`, color: '#2ca02c', points: ep('emaLoss') }] : []),
  ], 'epoch');
  const acc = lineChart('Accuracy (%)', [
    { name: 'train', color: '#1f77b4', points: pct('trainAcc') },
    { name: `${evalName} top-1`, color: '#d62728', points: pct('valAcc') },
    { name: `${evalName} top-5`, color: '#ff7f0e', points: pct('valTop5') },
    ...(h.some((r) => r.emaAcc !== null) ? [{ name: `EMA ${evalName} top-1`, color: '#2ca02c', points: pct('emaAcc') }] : []),
  ], 'epoch');
  const lr = lineChart('Learning rate', [{ name: 'lr', color: '#9467bd', points: d.lrTrace }], 'step');
  const summary = Object.entries(d.summary).map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(String(v))}</td></tr>`).join('');
  const epochs = h.map((r) => `<tr><td>${r.epoch}</td><td>${r.trainLoss.toFixed(4)}</td><td>${(100 * r.trainAcc).toFixed(2)}</td><td>${r.valLoss.toFixed(4)}</td><td>${(100 * r.valAcc).toFixed(2)}</td><td>${(100 * r.valTop5).toFixed(2)}</td><td>${r.emaAcc === null ? '-' : (100 * r.emaAcc).toFixed(2)}</td><td>${r.lr.toExponential(2)}</td><td>${r.imagesPerSec.toFixed(0)}</td><td>${r.epochSeconds.toFixed(1)}</td><td>${r.rssMB.toFixed(0)}</td></tr>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(d.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(d.title)}</h1>
<table id="summary">${summary}</table>
<h2>Curves</h2>
<div class="charts">${loss}${acc}${lr}</div>
<h2>Epochs</h2>
<table id="epochs"><thead><tr><th>epoch</th><th>train loss</th><th>train acc %</th><th>${evalName} loss</th><th>top-1 %</th><th>top-5 %</th><th>EMA top-1 %</th><th>lr</th><th>images/s</th><th>seconds</th><th>RSS MB</th></tr></thead><tbody>${epochs}</tbody></table>
<h2>Confusion matrix (${evalName})</h2>
${confusionHeatmap(d.confusion, d.classNames)}
<h2>Per-class precision, recall and F1 (${evalName})</h2>
${classTable(d.classReport)}
<h2>Misclassified ${evalName} images</h2>
${misclassifiedGrid(d.misclassified)}
${camSection(d, evalName)}
<h2>Recipe</h2>
<pre>${escapeHtml(JSON.stringify(d.recipe, null, 2))}</pre>
</body></html>
`;
}
