// Compound scaling (Tan & Le 2019, section 3.3): one coefficient phi scales depth by alpha^phi,
// width by beta^phi and resolution by gamma^phi, with alpha * beta^2 * gamma^2 ~ 2, so each unit
// of phi about doubles the FLOPs. Any scaled variant is B0's stage table decoded by the same
// builder as B1-B7, with the same rounding rules.
import { withDevice } from '../engine/index.js';
import { countMacs } from '../analyze/macs.js';
import { EfficientNet, EFFICIENTNET_B0_STAGES, EFFICIENTNET_B_VARIANTS, efficientnetB, efficientnetCommonArch, scaleStages, type EfficientNetArch } from './efficientnet.js';
import type { ModelOptions } from './registry.js';

export interface CompoundCoefficients {
  /** depth base (alpha) */
  alpha: number;
  /** width base (beta) */
  beta: number;
  /** resolution base (gamma) */
  gamma: number;
}

/** The paper's grid-searched coefficients for the B series. */
export const EFFICIENTNET_COEFFICIENTS: Readonly<CompoundCoefficients> = Object.freeze({ alpha: 1.2, beta: 1.1, gamma: 1.15 });
export const EFFICIENTNET_BASE_RESOLUTION = 224;

/** Either a compound coefficient, or the three multipliers directly. */
export type ScalingSpec =
  | ({ phi: number } & Partial<CompoundCoefficients>)
  | { widthMult: number; depthMult: number; resolution?: number };

export interface ScaledDims {
  phi: number | null;
  widthMult: number;
  depthMult: number;
  resolution: number;
}

/**
 * The multipliers of a spec. The resolution from phi is rounded to a multiple of 8: the first
 * three stride-2 stages then see even sizes (no lopsided padding), and it is as close to
 * 224 * gamma^phi as a multiple of 8 gets (the paper's own sizes are hand-rounded, e.g. 240, 260).
 */
export function compoundScaling(spec: ScalingSpec): ScaledDims {
  if ('phi' in spec) {
    const { alpha, beta, gamma } = { ...EFFICIENTNET_COEFFICIENTS, ...definedOnly(spec) };
    if (!Number.isFinite(spec.phi)) throw new RangeError(`compoundScaling: phi must be a finite number, got ${spec.phi}`);
    for (const [k, v] of Object.entries({ alpha, beta, gamma })) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`compoundScaling: ${k} must be a positive number, got ${v}`);
    }
    const resolution = Math.max(8, Math.round((EFFICIENTNET_BASE_RESOLUTION * gamma ** spec.phi) / 8) * 8);
    return { phi: spec.phi, widthMult: beta ** spec.phi, depthMult: alpha ** spec.phi, resolution };
  }
  const { widthMult, depthMult } = spec;
  for (const [k, v] of Object.entries({ widthMult, depthMult })) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`compoundScaling: ${k} must be a positive number, got ${v}`);
  }
  const resolution = spec.resolution ?? EFFICIENTNET_BASE_RESOLUTION;
  if (!(Number.isInteger(resolution) && resolution > 0)) throw new RangeError(`compoundScaling: resolution must be a positive integer, got ${resolution}`);
  return { phi: null, widthMult, depthMult, resolution };
}

function definedOnly(o: Partial<CompoundCoefficients>): Partial<CompoundCoefficients> {
  const out: Partial<CompoundCoefficients> = {};
  for (const k of ['alpha', 'beta', 'gamma'] as const) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/**
 * The classifier dropout the B series uses grows from 0.2 (B0) to 0.5 (B7); a scaled variant
 * gets 0.2 + 0.05 phi, within [0.2, 0.5], unless opts.dropRate says otherwise.
 */
export function scaledDropout(phi: number | null, widthMult: number): number {
  const p = phi ?? Math.log(widthMult) / Math.log(EFFICIENTNET_COEFFICIENTS.beta);
  return Math.min(0.5, Math.max(0.2, 0.2 + 0.05 * p));
}

/** The architecture of a scaled variant, without building it. */
export function scaledArch(spec: ScalingSpec, opts: ModelOptions = {}): EfficientNetArch & { dims: ScaledDims } {
  const dims = compoundScaling(spec);
  const name = dims.phi === null
    ? `efficientnet(w=${dims.widthMult}, d=${dims.depthMult})`
    : `efficientnet(phi=${dims.phi})`;
  return {
    dims,
    name,
    stages: scaleStages(EFFICIENTNET_B0_STAGES, dims.widthMult, dims.depthMult),
    lastChannel: null,
    bnEps: 1e-5,
    bnMomentum: 0.1,
    minInputSize: 1,
    ...efficientnetCommonArch(name, opts, scaledDropout(dims.phi, dims.widthMult)),
  };
}

/**
 * Builds any compound-scaled EfficientNet from B0's table:
 * efficientnetScaled({ phi: 2 }) or efficientnetScaled({ widthMult: 1.1, depthMult: 1.2, resolution: 260 }).
 * Its native resolution is `model.resolution`.
 */
export function efficientnetScaled(spec: ScalingSpec, opts: ModelOptions = {}): EfficientNet & { resolution: number } {
  const { dims, ...arch } = scaledArch(spec, opts);
  return Object.assign(new EfficientNet(arch), { resolution: dims.resolution });
}

export interface ScalingReport extends ScaledDims {
  /** the stage table after scaling: [in, out, repeats] per stage */
  stages: { inChannels: number; outChannels: number; numLayers: number }[];
  params: number;
  /** multiply-adds of one image at `resolution` */
  macs: number;
}

/**
 * Parameter count and MACs of a scaled variant at its resolution (one image), counted on the meta
 * device: shapes only, so even a B7-sized variant is described without allocating its weights.
 */
export function describeScaling(spec: ScalingSpec, opts: ModelOptions = {}): ScalingReport {
  const dims = compoundScaling(spec);
  const arch = scaledArch(spec, opts);
  const { params, macs } = withDevice('meta', () => {
    const model = efficientnetScaled(spec, opts);
    return { params: model.numParameters(), macs: countMacs(model, [1, model.inChannels, dims.resolution, dims.resolution]).total };
  });
  return { ...dims, stages: arch.stages.map(({ inChannels, outChannels, numLayers }) => ({ inChannels, outChannels, numLayers })), params, macs };
}

/** One line per report, for printing a scaling table. */
export function formatScalingTable(reports: ScalingReport[]): string {
  const base = reports[0]?.macs ?? 1;
  const head = 'phi  width  depth  res   params       MACs (M)   MACs / first';
  const rows = reports.map((r) => [
    String(r.phi ?? '-').padEnd(4),
    r.widthMult.toFixed(3).padEnd(6),
    r.depthMult.toFixed(3).padEnd(6),
    String(r.resolution).padEnd(5),
    r.params.toLocaleString('en-US').padEnd(12),
    (r.macs / 1e6).toFixed(1).padEnd(10),
    (r.macs / base).toFixed(2),
  ].join(' '));
  return [head, ...rows].join('\n');
}

// ---- scaling a base model by user coefficients ----------------------------------------------------

/** The compound coefficients of a search or a scaled build: each >= 1 (a dimension only grows). */
export function checkCoefficients(c: CompoundCoefficients, where = 'compound scaling'): void {
  for (const k of ['alpha', 'beta', 'gamma'] as const) {
    const v = c[k];
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 1)) {
      throw new RangeError(`${where}: ${k} must be a number >= 1 (compound scaling grows depth, width and resolution, never shrinks them), got ${String(v)}`);
    }
  }
}

/** A base to scale: an EfficientNet B variant, optionally narrowed, made shallower or run at another resolution. */
export interface ScalingBase {
  /** 'efficientnet_b0' ... 'efficientnet_b7' */
  model: string;
  /** the base's width and depth multipliers before scaling; default the variant's own */
  widthMult?: number;
  depthMult?: number;
  /** the base's resolution; default the variant's (224 for B0) */
  resolution?: number;
  /** scaled resolutions are rounded to a multiple of this (default 8, as compoundScaling) */
  resolutionMultiple?: number;
}

export interface ScaledBase {
  base: string;
  alpha: number;
  beta: number;
  gamma: number;
  phi: number;
  /** alpha * beta^2 * gamma^2: the factor by which one unit of phi multiplies the MACs */
  flopsFactor: number;
  widthMult: number;
  depthMult: number;
  resolution: number;
  /** the options that build it: createModel(base, modelOptions), fed resolution x resolution images */
  modelOptions: { widthMult: number; depthMult: number };
}

/** The B variant a base names, or an error that says which bases scale. */
export function scalingBaseVariant(model: string): (typeof EFFICIENTNET_B_VARIANTS)[number] {
  const v = EFFICIENTNET_B_VARIANTS.find((x) => x.name === model);
  if (!v) {
    throw new RangeError(`cannot scale '${model}': the base must be an EfficientNet B variant (${EFFICIENTNET_B_VARIANTS.map((x) => x.name).join(', ')}), whose stage table compound scaling rescales`);
  }
  return v;
}

/**
 * Depth x alpha^phi, width x beta^phi and resolution x gamma^phi of a base, with the zoo's rounding
 * rules (channels to multiples of 8 and repeats rounded up when the model is built; the resolution
 * to a multiple of resolutionMultiple here).
 */
export function scaleBase(base: ScalingBase, c: CompoundCoefficients & { phi: number }): ScaledBase {
  const v = scalingBaseVariant(base.model);
  checkCoefficients(c);
  if (!(Number.isFinite(c.phi) && c.phi >= 0)) throw new RangeError(`compound scaling: phi must be a number >= 0, got ${c.phi}`);
  const bw = base.widthMult ?? v.widthMult;
  const bd = base.depthMult ?? v.depthMult;
  const br = base.resolution ?? v.resolution;
  const m = base.resolutionMultiple ?? 8;
  for (const [k, x] of [['base widthMult', bw], ['base depthMult', bd]] as const) {
    if (!(Number.isFinite(x) && x > 0)) throw new RangeError(`compound scaling: ${k} must be a positive number, got ${x}`);
  }
  if (!(Number.isInteger(br) && br > 0)) throw new RangeError(`compound scaling: the base resolution must be a positive integer, got ${br}`);
  if (!(Number.isInteger(m) && m > 0)) throw new RangeError(`compound scaling: resolutionMultiple must be a positive integer, got ${m}`);
  const widthMult = bw * c.beta ** c.phi;
  const depthMult = bd * c.alpha ** c.phi;
  const resolution = Math.max(m, Math.round((br * c.gamma ** c.phi) / m) * m);
  return {
    base: v.name, alpha: c.alpha, beta: c.beta, gamma: c.gamma, phi: c.phi, flopsFactor: c.alpha * c.beta ** 2 * c.gamma ** 2,
    widthMult, depthMult, resolution, modelOptions: { widthMult, depthMult },
  };
}

/** Parameters and MACs (one image at the scaled resolution) of a scaled base, counted on the meta device. */
export function describeScaledBase(s: ScaledBase, opts: ModelOptions = {}): { params: number; macs: number } {
  const v = scalingBaseVariant(s.base);
  return withDevice('meta', () => {
    const model = efficientnetB(v, { ...opts, ...s.modelOptions });
    return { params: model.numParameters(), macs: countMacs(model, [1, model.inChannels, s.resolution, s.resolution]).total };
  });
}
