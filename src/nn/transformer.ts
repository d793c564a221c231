// Multi-head attention and the Transformer encoder, with torch.nn's names (in_proj_weight,
// out_proj, self_attn, linear1, norm1, layers.0, ...) and the arithmetic of PyTorch 1.13's
// F.multi_head_attention_forward, so nn.TransformerEncoder state dicts load by name and give the
// same outputs.
import { F, empty, full, noGrad, tidy, zeros, type Tensor } from '../engine/index.js';
import { Module, Parameter } from './module.js';
import { ModuleList } from './container.js';
import { Linear } from './linear.js';
import { LayerNorm } from './norm.js';
import { Dropout } from './dropout.js';
import { constant_, xavierUniform_ } from './init.js';

export interface MultiheadAttentionOptions {
  /** dropout on the attention weights, in training (default 0) */
  dropout?: number;
  /** in_proj_bias and out_proj.bias (default true) */
  bias?: boolean;
  /** key features when they differ from embedDim (separate q/k/v_proj_weight then, as PyTorch) */
  kdim?: number;
  vdim?: number;
  /** [N, L, E] instead of [L, N, E] */
  batchFirst?: boolean;
}

export interface AttentionCallOptions {
  /** [N, S]: true (or -inf when float) marks a key to ignore, e.g. padding */
  keyPaddingMask?: Tensor | null;
  /** [L, S] or [N * heads, L, S]: true (or -inf when float) forbids attending */
  attnMask?: Tensor | null;
  /** also return the attention weights (default true, as PyTorch) */
  needWeights?: boolean;
  /** average the weights over heads (default true) */
  averageAttnWeights?: boolean;
}

/** Multi-head attention; forward(q, k, v, opts) returns [output, weights | null]. */
export class MultiheadAttention extends Module<[Tensor, Tensor, Tensor, AttentionCallOptions?], [Tensor, Tensor | null]> {
  in_proj_weight: Parameter | null = null;
  q_proj_weight: Parameter | null = null;
  k_proj_weight: Parameter | null = null;
  v_proj_weight: Parameter | null = null;
  in_proj_bias: Parameter | null = null;
  out_proj: Linear;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(readonly embedDim: number, readonly numHeads: number, o: MultiheadAttentionOptions = {}) {
    super();
    this.headDim = Math.floor(embedDim / numHeads);
    if (!(Number.isInteger(embedDim) && Number.isInteger(numHeads) && numHeads > 0 && this.headDim * numHeads === embedDim)) {
      throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    }
    this.kdim = o.kdim ?? embedDim;
    this.vdim = o.vdim ?? embedDim;
    this.dropout = o.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout <= 1)) throw new RangeError(`MultiheadAttention: dropout must be in [0, 1], got ${this.dropout}`);
    this.batchFirst = o.batchFirst ?? false;
    const bias = o.bias ?? true;
    if (this.sameEmbedDim) {
      this.in_proj_weight = new Parameter(empty([3 * embedDim, embedDim]));
    } else {
      this.q_proj_weight = new Parameter(empty([embedDim, embedDim]));
      this.k_proj_weight = new Parameter(empty([embedDim, this.kdim]));
      this.v_proj_weight = new Parameter(empty([embedDim, this.vdim]));
    }
    if (bias) this.in_proj_bias = new Parameter(empty([3 * embedDim]));
    this.out_proj = new Linear(embedDim, embedDim, { bias });
    this.resetParameters();
  }

  get sameEmbedDim(): boolean {
    return this.kdim === this.embedDim && this.vdim === this.embedDim;
  }

  /** PyTorch's _reset_parameters: xavier_uniform projections, zero biases (out_proj.weight keeps Linear's init). */
  resetParameters(): void {
    for (const w of [this.in_proj_weight, this.q_proj_weight, this.k_proj_weight, this.v_proj_weight]) if (w) xavierUniform_(w);
    if (this.in_proj_bias) {
      constant_(this.in_proj_bias, 0);
      if (this.out_proj.bias) constant_(this.out_proj.bias, 0);
    }
  }

  forward(query: Tensor, key: Tensor, value: Tensor, o: AttentionCallOptions = {}): [Tensor, Tensor | null] {
    return tidy(() => {
      const batched = query.ndim === 3;
      if (!batched && query.ndim !== 2) {
        throw new Error(`MultiheadAttention: query must be [L, E] or ${this.batchFirst ? '[N, L, E]' : '[L, N, E]'}, got [${query.shape.join(', ')}]`);
      }
      // to PyTorch's internal [L, N, E], keeping "query is key is value" (self-attention) intact
      const lift = (t: Tensor): Tensor => (batched ? (this.batchFirst ? t.transpose(0, 1) : t) : t.unsqueeze(1));
      const q = lift(query);
      const k = key === query ? q : lift(key);
      const v = value === key ? k : lift(value);
      const kpm = o.keyPaddingMask && !batched ? o.keyPaddingMask.unsqueeze(0) : o.keyPaddingMask ?? null;
      const [out, weights] = this.#attend(q, k, v, kpm, o.attnMask ?? null, o);
      const outB = batched ? (this.batchFirst ? out.transpose(0, 1) : out) : out.squeeze(1);
      const w = weights && !batched ? weights.squeeze(0) : weights;
      return [outB, w];
    });
  }

  /** The in-projection, as _in_projection_packed / _in_projection split it. */
  #project(q: Tensor, k: Tensor, v: Tensor): [Tensor, Tensor, Tensor] {
    const E = this.embedDim;
    const b = this.in_proj_bias;
    if (this.in_proj_weight) {
      const w = this.in_proj_weight;
      if (k === v && q === k) return F.linear(q, w, b).chunk(3, -1) as [Tensor, Tensor, Tensor];
      if (k === v) {
        const [wq, wkv] = w.split([E, 2 * E]);
        const [bq, bkv] = b ? b.split([E, 2 * E]) : [null, null];
        const [kk, vv] = F.linear(k, wkv, bkv).chunk(2, -1);
        return [F.linear(q, wq, bq), kk, vv];
      }
      const [wq, wk, wv] = w.chunk(3);
      const [bq, bk, bv] = b ? b.chunk(3) : [null, null, null];
      return [F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)];
    }
    const [bq, bk, bv] = b ? b.chunk(3) : [null, null, null];
    return [F.linear(q, this.q_proj_weight!, bq), F.linear(k, this.k_proj_weight!, bk), F.linear(v, this.v_proj_weight!, bv)];
  }

  #attend(query: Tensor, key: Tensor, value: Tensor, kpm: Tensor | null, attnMask: Tensor | null, o: AttentionCallOptions): [Tensor, Tensor | null] {
    const [tgt, bsz, E] = query.shape;
    const src = key.size(0);
    if (E !== this.embedDim) throw new Error(`MultiheadAttention: expected query features ${this.embedDim}, got ${E}`);
    if (key.size(1) !== bsz || value.size(1) !== bsz || value.size(0) !== src) {
      throw new Error(`MultiheadAttention: key [${key.shape.join(', ')}] and value [${value.shape.join(', ')}] do not match query [${query.shape.join(', ')}] in batch or length`);
    }
    const H = this.numHeads;
    const hd = this.headDim;
    const [q0, k0, v0] = this.#project(query, key, value);
    const heads = (t: Tensor, len: number): Tensor => t.contiguous().view([len, bsz * H, hd]).transpose(0, 1);
    const q = heads(q0, tgt);
    const k = heads(k0, src);
    const v = heads(v0, src);
    const mask = this.#mergeMasks(kpm, attnMask, { bsz, tgt, src, dtype: q.dtype });
    const scores = q.div(Math.sqrt(hd)).bmm(k.transpose(-2, -1));
    let attn = (mask ? scores.add(mask) : scores).softmax(-1);
    if (this.training && this.dropout > 0) attn = F.dropout(attn, this.dropout, true);
    const ctx = attn.bmm(v).transpose(0, 1).contiguous().view([tgt * bsz, E]);
    const out = this.out_proj.call(ctx).view([tgt, bsz, E]);
    if (!(o.needWeights ?? true)) return [out, null];
    const w = attn.view([bsz, H, tgt, src]);
    return [out, (o.averageAttnWeights ?? true) ? w.sum(1).div(H) : w];
  }

  /** One additive float mask [N * heads, L | 1, S] from the key-padding and attention masks, or null. */
  #mergeMasks(kpm: Tensor | null, attnMask: Tensor | null, s: { bsz: number; tgt: number; src: number; dtype: Tensor['dtype'] }): Tensor | null {
    const H = this.numHeads;
    let mask: Tensor | null = null;
    if (attnMask) {
      const ok2 = attnMask.ndim === 2 && attnMask.size(0) === s.tgt && attnMask.size(1) === s.src;
      const ok3 = attnMask.ndim === 3 && attnMask.size(0) === s.bsz * H && attnMask.size(1) === s.tgt && attnMask.size(2) === s.src;
      if (!ok2 && !ok3) {
        throw new Error(`MultiheadAttention: attnMask must be [${s.tgt}, ${s.src}] or [${s.bsz * H}, ${s.tgt}, ${s.src}], got [${attnMask.shape.join(', ')}]`);
      }
      mask = toAdditive(ok2 ? attnMask.unsqueeze(0) : attnMask, s.dtype, 'attnMask');
    }
    if (kpm) {
      if (kpm.ndim !== 2 || kpm.size(0) !== s.bsz || kpm.size(1) !== s.src) {
        throw new Error(`MultiheadAttention: keyPaddingMask must be [${s.bsz}, ${s.src}] (batch, key length), got [${kpm.shape.join(', ')}]`);
      }
      const expanded = kpm.view([s.bsz, 1, 1, s.src]).expand([s.bsz, H, 1, s.src]).reshape([s.bsz * H, 1, s.src]);
      const add = toAdditive(expanded, s.dtype, 'keyPaddingMask');
      mask = mask ? mask.add(add) : add;
    }
    return mask;
  }

  override extraRepr(): string {
    return `embed_dim=${this.embedDim}, num_heads=${this.numHeads}${this.batchFirst ? ', batch_first=True' : ''}`;
  }
}

/** A bool mask becomes 0 / -inf; a float mask is already additive. */
function toAdditive(mask: Tensor, dtype: Tensor['dtype'], what: string): Tensor {
  if (mask.dtype === 'bool') return zeros(mask.shape, { dtype, device: mask.device }).maskedFill(mask, -Infinity);
  if (mask.dtype === 'uint8') return toAdditive(mask.bool(), dtype, what);
  if (!mask.dtype.startsWith('float') && mask.dtype !== 'bfloat16') {
    throw new TypeError(`MultiheadAttention: ${what} must be bool or floating point, got ${mask.dtype}`);
  }
  return mask.to(dtype);
}

export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: Activation;
  layerNormEps?: number;
  batchFirst?: boolean;
  /** pre-norm (x + f(norm(x))) instead of post-norm (norm(x + f(x))) */
  normFirst?: boolean;
  /** biases in the attention and feed-forward projections (default true) */
  bias?: boolean;
}

export interface EncoderCallOptions {
  /** [L, S] or [N * heads, L, S] attention mask */
  mask?: Tensor | null;
  /** [N, S], true marks padding */
  srcKeyPaddingMask?: Tensor | null;
}

/** nn.TransformerEncoderLayer: self-attention and a feed-forward block, each with a residual and LayerNorm. */
export class TransformerEncoderLayer extends Module<[Tensor, EncoderCallOptions?], Tensor> {
  self_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly normFirst: boolean;
  readonly activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, readonly o: TransformerEncoderLayerOptions = {}) {
    super();
    const ff = o.dimFeedforward ?? 2048;
    const p = o.dropout ?? 0.1;
    const bias = o.bias ?? true;
    this.self_attn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: o.batchFirst, bias });
    this.linear1 = new Linear(dModel, ff, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(ff, dModel, { bias });
    this.normFirst = o.normFirst ?? false;
    this.norm1 = new LayerNorm(dModel, { eps: o.layerNormEps ?? 1e-5 });
    this.norm2 = new LayerNorm(dModel, { eps: o.layerNormEps ?? 1e-5 });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    this.activation = activationFn(o.activation ?? 'relu');
  }

  /** A fresh layer with the same settings, weights and mode (PyTorch's deepcopy in TransformerEncoder). */
  clone(): TransformerEncoderLayer {
    const c = new TransformerEncoderLayer(this.dModel, this.nhead, this.o);
    c.loadStateDict(this.stateDict());
    return c.train(this.training);
  }

  forward(src: Tensor, o: EncoderCallOptions = {}): Tensor {
    return tidy(() => {
      let x = src;
      if (this.normFirst) {
        x = x.add(this.#sa(this.norm1.call(x), o));
        x = x.add(this.#ff(this.norm2.call(x)));
      } else {
        x = this.norm1.call(x.add(this.#sa(x, o)));
        x = this.norm2.call(x.add(this.#ff(x)));
      }
      return x;
    });
  }

  #sa(x: Tensor, o: EncoderCallOptions): Tensor {
    const [y] = this.self_attn.call(x, x, x, { attnMask: o.mask, keyPaddingMask: o.srcKeyPaddingMask, needWeights: false });
    return this.dropout1.call(y);
  }

  #ff(x: Tensor): Tensor {
    return this.dropout2.call(this.linear2.call(this.dropout.call(this.activation(this.linear1.call(x)))));
  }
}

function activationFn(a: Activation): (x: Tensor) => Tensor {
  if (typeof a === 'function') return a;
  if (a === 'relu') return F.relu;
  if (a === 'gelu') return (x: Tensor) => F.gelu(x);
  throw new Error(`TransformerEncoderLayer: activation should be 'relu', 'gelu' or a function, got '${String(a)}'`);
}

/**
 * nn.TransformerEncoder: numLayers copies of encoderLayer (layers.0 is the given layer itself,
 * the rest start as copies of it, as PyTorch's deepcopy), then an optional final norm.
 */
export class TransformerEncoder extends Module<[Tensor, EncoderCallOptions?], Tensor> {
  layers: ModuleList<TransformerEncoderLayer>;
  norm: LayerNorm | null;

  constructor(encoderLayer: TransformerEncoderLayer, readonly numLayers: number, o: { norm?: LayerNorm | null } = {}) {
    super();
    if (!(Number.isInteger(numLayers) && numLayers > 0)) throw new RangeError(`TransformerEncoder: numLayers must be a positive integer, got ${numLayers}`);
    const copies = Array.from({ length: numLayers - 1 }, () => encoderLayer.clone());
    this.layers = new ModuleList([encoderLayer, ...copies]);
    this.norm = o.norm ?? null;
  }

  forward(src: Tensor, o: EncoderCallOptions = {}): Tensor {
    const kpm = o.srcKeyPaddingMask;
    if (kpm && kpm.dtype !== 'bool' && !kpm.dtype.startsWith('float')) {
      throw new TypeError(`TransformerEncoder: srcKeyPaddingMask must be bool or floating point, got ${kpm.dtype}`);
    }
    return tidy(() => {
      let x = src;
      for (const layer of this.layers) x = layer.call(x, o);
      return this.norm ? this.norm.call(x) : x;
    });
  }
}

/** Additive causal mask [L, L]: -inf above the diagonal (nn.Transformer.generate_square_subsequent_mask). */
export function generateSquareSubsequentMask(size: number): Tensor {
  return noGrad(() => tidy(() => full([size, size], -Infinity).triu(1)));
}
