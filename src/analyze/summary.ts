// A layer-by-layer summary of a model (as torchinfo prints): every module's name, type, output
// shape, parameters and multiply-adds, measured with forward hooks on one eval pass.
import { BYTES_PER_ELEMENT, isTensor, type Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { layerMacs, probePass, type CountMacsOptions } from './macs.js';

export interface SummaryRow {
  /** dotted name in the model */
  name: string;
  type: string;
  /** nesting depth (1 = a child of the model) */
  depth: number;
  /** shapes of the first call's outputs (one per output tensor) */
  outputShapes: number[][];
  /** parameters of this module and its descendants */
  params: number;
  /** multiply-adds over the whole batch: the module's own (leaves) or the sum of its descendants */
  macs: number;
  /** how many times forward ran (a shared module runs more than once) */
  calls: number;
}

export interface SummaryReport {
  model: string;
  inputShape: number[];
  rows: SummaryRow[];
  totalParams: number;
  trainableParams: number;
  totalMacs: number;
  /** parameters and buffers, in bytes */
  stateBytes: number;
}

function shapesOf(out: unknown): number[][] {
  if (isTensor(out)) return [out.shape];
  if (Array.isArray(out)) return out.flatMap(shapesOf);
  return [];
}

/**
 * Runs one probePass (eval mode, zeros of inputShape, batch included, e.g. [1, 3, 224, 224]) and
 * reports every module that ran. A model built under withDevice('meta') is summarised shape-only.
 */
export function summary(model: Module<[Tensor], unknown>, inputShape: number[], o: CountMacsOptions = {}): SummaryReport {
  const seen = new Map<string, { type: string; shapes: number[][]; ownMacs: number; calls: number; params: number }>();
  const modules = model.namedModules().filter(([name]) => name !== '');
  const removers = modules.map(([name, m]) => m.registerForwardHook((mod, inputs, output) => {
    const macs = layerMacs(mod, inputs, output);
    const prev = seen.get(name);
    if (prev) { prev.calls++; prev.ownMacs += macs; return; }
    seen.set(name, { type: mod.typeName, shapes: shapesOf(output), ownMacs: macs, calls: 1, params: mod.numParameters() });
  }));
  try {
    probePass('summary', model, inputShape, o);
  } finally {
    for (const r of removers) r();
  }
  // a module's MACs are its own work (a layer's, or an attention's products) plus its descendants'
  const own = [...seen];
  const rows: SummaryRow[] = modules.filter(([name]) => seen.has(name)).map(([name]) => {
    const s = seen.get(name)!;
    const macs = own.filter(([n]) => n === name || n.startsWith(`${name}.`)).reduce((a, [, l]) => a + l.ownMacs, 0);
    return { name, type: s.type, depth: name.split('.').length, outputShapes: s.shapes, params: s.params, macs, calls: s.calls };
  });
  const stateBytes = [...model.stateDict().values()].reduce((n, t) => n + t.numel() * BYTES_PER_ELEMENT[t.dtype], 0);
  return {
    model: model.typeName,
    inputShape: [...inputShape],
    rows,
    totalParams: model.numParameters(),
    trainableParams: model.numParameters(true),
    totalMacs: own.reduce((a, [, l]) => a + l.ownMacs, 0),
    stateBytes,
  };
}

/** 1234567 -> '1.23M' */
export function humanCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)}T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

export interface FormatSummaryOptions {
  /** hide rows deeper than this (default: all) */
  maxDepth?: number;
}

/** The summary as a text table, with totals. */
export function formatSummary(r: SummaryReport, o: FormatSummaryOptions = {}): string {
  const rows = r.rows.filter((x) => o.maxDepth === undefined || x.depth <= o.maxDepth);
  const header = ['layer', 'type', 'output shape', 'params', 'mult-adds'];
  const body = rows.map((x) => [
    `${'  '.repeat(x.depth - 1)}${x.name.split('.').pop()}`,
    x.type,
    x.outputShapes.map((s) => `[${s.join(', ')}]`).join(' '),
    x.params.toLocaleString('en-US'),
    x.macs.toLocaleString('en-US'),
  ]);
  const cells = [header, ...body];
  const widths = header.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  const line = (c: string[]): string => c.map((v, i) => (i >= 3 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  const rule = '='.repeat(widths.reduce((a, b) => a + b + 2, -2));
  return [
    `${r.model} summary for input [${r.inputShape.join(', ')}]`,
    rule, line(header), rule, ...body.map(line), rule,
    `total parameters:      ${r.totalParams.toLocaleString('en-US')} (${humanCount(r.totalParams)})`,
    `trainable parameters:  ${r.trainableParams.toLocaleString('en-US')}`,
    `non-trainable:         ${(r.totalParams - r.trainableParams).toLocaleString('en-US')}`,
    `mult-adds:             ${r.totalMacs.toLocaleString('en-US')} (${humanCount(r.totalMacs)})`,
    `state size:            ${(r.stateBytes / 1e6).toFixed(2)} MB`,
    rule,
  ].join('\n');
}
