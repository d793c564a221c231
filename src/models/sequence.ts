// Ready sequence classifiers: a recurrent (LSTM / GRU / RNN) or Transformer encoder over token ids
// or feature vectors, pooled over time, then a linear head. They take what an image loader gives
// too: a [N, 1, T, F] batch is read as N sequences of T steps of F features, so Fashion-MNIST
// trains row by row (28 steps of 28 pixels) with the image pipeline unchanged.
//
// Reference definitions with the same names and arithmetic: test/helpers/ref_seq.py.
import { cat, full, tidy, zeros, type Tensor } from '../engine/index.js';
import {
  Dropout, Embedding, GRU, LSTM, LayerNorm, Linear, Module, Parameter, RNN, TransformerEncoder, TransformerEncoderLayer, chain, init,
  type Activation,
} from '../nn/index.js';
import { registerModel, type ModelConfig, type ModelOptions } from './registry.js';

export interface SequenceClassifierOptions extends ModelOptions {
  /**
   * Features per time step of real-valued input [N, T, F] (default 28, a Fashion-MNIST row).
   * inChannels is the image's channel count (a trainer passes the dataset's), not this: an image
   * batch must be gray, [N, 1, T, F].
   */
  inFeatures?: number;
  /** Token input: the input is int64 ids [N, T], looked up in an Embedding of this many rows. */
  vocabSize?: number;
  /** The id that marks (right-)padding in token input: masked in attention and pooling, not counted in lengths. */
  paddingIdx?: number;
  /** 'last': the output at each sequence's last valid step (RNN default); 'mean': the mean over valid steps (Transformer default) */
  pooling?: 'last' | 'mean';
  /** dropout inside the encoder: between RNN layers, or in the Transformer's attention and feed-forward blocks */
  dropout?: number;
  numLayers?: number;
}

export interface RecurrentClassifierOptions extends SequenceClassifierOptions {
  cell?: 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';
  /** width of the token embedding (token input only; default 128) */
  embedDim?: number;
  hiddenSize?: number;
  bidirectional?: boolean;
}

export interface TransformerClassifierOptions extends SequenceClassifierOptions {
  dModel?: number;
  nhead?: number;
  dimFeedforward?: number;
  activation?: Activation;
  /** pre-norm layers and a final LayerNorm (default true: trains more stably from scratch) */
  normFirst?: boolean;
  /** the longest sequence the learned position embedding covers (default 512) */
  maxLen?: number;
}

const DEFAULT_FEATURES = 28;
const DEFAULT_CLASSES = 10;

interface Prepared {
  /** [N, T] or [N, T, F] */
  input: Tensor;
  /** [N, T] bool, true at valid steps; null when every step is valid */
  valid: Tensor | null;
}

/** Shared input handling: token ids or features, [N, 1, T, F] image batches, the padding mask. */
abstract class SequenceClassifier extends Module<[Tensor], Tensor> {
  readonly numClasses: number;
  readonly inFeatures: number;
  readonly vocabSize: number | undefined;
  readonly paddingIdx: number | undefined;

  constructor(protected readonly label: string, o: SequenceClassifierOptions) {
    super();
    this.numClasses = o.numClasses ?? DEFAULT_CLASSES;
    this.inFeatures = o.inFeatures ?? DEFAULT_FEATURES;
    this.vocabSize = o.vocabSize;
    this.paddingIdx = o.paddingIdx;
    positiveInt(label, 'numClasses', this.numClasses);
    positiveInt(label, 'inFeatures', this.inFeatures);
    if (o.inChannels !== undefined && o.inChannels !== 1) {
      throw new RangeError(`${label}: reads an image batch [N, 1, T, F] as sequences of T rows, so it needs gray images (inChannels 1), got inChannels ${o.inChannels}`);
    }
    if (this.vocabSize !== undefined) positiveInt(label, 'vocabSize', this.vocabSize);
    if (this.paddingIdx !== undefined && (this.vocabSize === undefined || !Number.isInteger(this.paddingIdx) || this.paddingIdx < 0 || this.paddingIdx >= this.vocabSize)) {
      throw new RangeError(`${label}: paddingIdx needs token input (vocabSize) and must be in [0, vocabSize), got ${this.paddingIdx}`);
    }
    for (const [k, v] of [['dropRate', o.dropRate], ['dropout', o.dropout]] as const) {
      if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`${label}: ${k} must be in [0, 1], got ${v}`);
    }
  }

  protected prepare(x: Tensor): Prepared {
    if (this.vocabSize !== undefined) {
      if (x.ndim !== 2 || (x.dtype !== 'int64' && x.dtype !== 'int32')) {
        throw new Error(`${this.label}: token input must be int64 ids [N, T], got ${x.dtype} [${x.shape.join(', ')}]`);
      }
      return { input: x, valid: this.paddingIdx === undefined ? null : x.ne(this.paddingIdx) };
    }
    const seq = x.ndim === 4 && x.size(1) === 1 ? x.squeeze(1) : x;
    if (seq.ndim !== 3 || seq.size(2) !== this.inFeatures) {
      throw new Error(`${this.label}: expected features [N, T, ${this.inFeatures}] (or [N, 1, T, ${this.inFeatures}]), got [${x.shape.join(', ')}]`);
    }
    return { input: seq, valid: null };
  }
}

function positiveInt(label: string, key: string, v: number): void {
  if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`${label}: ${key} must be a positive integer, got ${v}`);
}

/** Mean of h [N, T, C] over the valid steps (all steps when valid is null). */
function meanValid(h: Tensor, valid: Tensor | null): Tensor {
  if (!valid) return h.mean(1);
  const w = valid.to(h.dtype);
  return h.mul(w.unsqueeze(-1)).sum(1).div(w.sum(1, true).clamp(1));
}

/** The number of valid steps per sequence ([N] int64), at least 1. */
function lengths(valid: Tensor | null, n: number, t: number, device: string): Tensor {
  if (!valid) return full([n], t, { dtype: 'int64', device });
  return valid.sum(1).clamp(1);
}

export class RecurrentClassifier extends SequenceClassifier {
  embed: Embedding | null;
  rnn: LSTM | GRU | RNN;
  dropout: Dropout;
  head: Linear;
  readonly pooling: 'last' | 'mean';
  readonly hiddenSize: number;

  constructor(o: RecurrentClassifierOptions = {}) {
    const cell = o.cell ?? 'lstm';
    super(`${cell}_classifier`, o);
    this.hiddenSize = o.hiddenSize ?? 128;
    const embedDim = o.embedDim ?? 128;
    this.embed = this.vocabSize !== undefined ? new Embedding(this.vocabSize, embedDim, { paddingIdx: this.paddingIdx }) : null;
    const rnnOpts = { numLayers: o.numLayers ?? 1, batchFirst: true, dropout: o.dropout ?? 0, bidirectional: o.bidirectional ?? false };
    const inSize = this.embed ? embedDim : this.inFeatures;
    this.rnn = cell === 'lstm' ? new LSTM(inSize, this.hiddenSize, rnnOpts)
      : cell === 'gru' ? new GRU(inSize, this.hiddenSize, rnnOpts)
        : new RNN(inSize, this.hiddenSize, { ...rnnOpts, nonlinearity: cell === 'rnn_relu' ? 'relu' : 'tanh' });
    this.dropout = new Dropout(o.dropRate ?? 0);
    this.head = new Linear(this.hiddenSize * this.rnn.numDirections, this.numClasses);
    this.pooling = o.pooling ?? 'last';
  }

  /** The encoding of each sequence before the classifier: the RNN's output pooled over the valid steps, [N, hidden * directions]. */
  forwardFeatures(x: Tensor): Tensor {
    return tidy(() => {
      const { input, valid } = this.prepare(x);
      const seq = this.embed ? this.embed.call(input) : input;
      const out = this.rnn.call(seq)[0];
      return this.pooling === 'mean' ? meanValid(out, valid) : this.#last(out, valid);
    });
  }

  /** Dropout and the linear classifier. */
  forwardHead(features: Tensor): Tensor {
    return chain(features, this.dropout, this.head);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }

  /**
   * The forward direction at each sequence's last valid step; for a bidirectional RNN, joined by
   * the backward direction at step 0 (its final state; with right padding it has read the pads first).
   */
  #last(out: Tensor, valid: Tensor | null): Tensor {
    const [n, t] = out.shape;
    const H = this.hiddenSize;
    const idx = lengths(valid, n, t, out.device).sub(1).view([n, 1, 1]).expand([n, 1, H]);
    const fwd = out.narrow(2, 0, H).gather(1, idx).squeeze(1);
    if (this.rnn.numDirections === 1) return fwd;
    return cat([fwd, out.select(1, 0).narrow(1, H, H)], 1);
  }
}

export class TransformerClassifier extends SequenceClassifier {
  pos_embed: Parameter;
  embed: Embedding | Linear;
  pos_drop: Dropout;
  encoder: TransformerEncoder;
  head_drop: Dropout;
  head: Linear;
  readonly pooling: 'mean' | 'last';
  readonly maxLen: number;

  constructor(o: TransformerClassifierOptions = {}) {
    super('transformer_classifier', o);
    const d = o.dModel ?? 64;
    const nhead = o.nhead ?? 4;
    this.maxLen = o.maxLen ?? 512;
    positiveInt(this.label, 'maxLen', this.maxLen);
    const normFirst = o.normFirst ?? true;
    const p = o.dropout ?? 0.1;
    this.pos_embed = new Parameter(init.truncNormal_(zeros([1, this.maxLen, d]), 0, 0.02, -2, 2));
    this.embed = this.vocabSize !== undefined ? new Embedding(this.vocabSize, d, { paddingIdx: this.paddingIdx }) : new Linear(this.inFeatures, d);
    this.pos_drop = new Dropout(p);
    const layer = new TransformerEncoderLayer(d, nhead, {
      dimFeedforward: o.dimFeedforward ?? 2 * d, dropout: p, activation: o.activation ?? 'gelu', batchFirst: true, normFirst,
    });
    this.encoder = new TransformerEncoder(layer, o.numLayers ?? 2, { norm: normFirst ? new LayerNorm(d) : null });
    this.head_drop = new Dropout(o.dropRate ?? 0);
    this.head = new Linear(d, this.numClasses);
    this.pooling = o.pooling ?? 'mean';
  }

  /** The encoding of each sequence before the classifier: the encoder's output pooled over the valid steps, [N, dModel]. */
  forwardFeatures(x: Tensor): Tensor {
    return tidy(() => {
      const { input, valid } = this.prepare(x);
      const t = input.size(1);
      if (t > this.maxLen) throw new Error(`${this.label}: sequence of ${t} steps is longer than maxLen ${this.maxLen}`);
      const h0 = this.pos_drop.call(this.embed.call(input).add(this.pos_embed.narrow(1, 0, t)));
      const pad = valid ? valid.logicalNot() : null;
      const h = this.encoder.call(h0, { srcKeyPaddingMask: pad });
      return this.pooling === 'mean' ? meanValid(h, valid) : lastValid(h, valid);
    });
  }

  /** Dropout and the linear classifier. */
  forwardHead(features: Tensor): Tensor {
    return chain(features, this.head_drop, this.head);
  }

  forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (f) => this.forwardHead(f));
  }
}

/** h [N, T, C] at each sequence's last valid step. */
function lastValid(h: Tensor, valid: Tensor | null): Tensor {
  const [n, t, c] = h.shape;
  return h.gather(1, lengths(valid, n, t, h.device).sub(1).view([n, 1, 1]).expand([n, 1, c])).squeeze(1);
}

export const lstmClassifier = (o: RecurrentClassifierOptions = {}): RecurrentClassifier => new RecurrentClassifier({ ...o, cell: 'lstm' });
export const gruClassifier = (o: RecurrentClassifierOptions = {}): RecurrentClassifier => new RecurrentClassifier({ ...o, cell: 'gru' });
export const transformerClassifier = (o: TransformerClassifierOptions = {}): TransformerClassifier => new TransformerClassifier(o);

// inputSize is [1, steps, features]: one "channel" of 28 rows of 28 pixels, as Fashion-MNIST
// images arrive; mean/std are identity (scale pixels to [0, 1] and they are ready).
// Their example input is the same rows as a sequence batch [1, T, F], at the default inFeatures.
const SEQ_CONFIG: ModelConfig = {
  family: 'sequence', inputSize: [1, 28, 28], minInputSize: 1, mean: [0, 0, 0], std: [1, 1, 1],
  interpolation: 'bilinear', cropPct: 1, torchvision: false,
  exampleInput: { shape: [1, 28, DEFAULT_FEATURES], dtype: 'float32', options: {} },
};

registerModel<RecurrentClassifierOptions>({ name: 'lstm_classifier', config: { ...SEQ_CONFIG }, build: lstmClassifier });
registerModel<RecurrentClassifierOptions>({ name: 'gru_classifier', config: { ...SEQ_CONFIG }, build: gruClassifier });
registerModel<TransformerClassifierOptions>({
  name: 'transformer_classifier', config: { ...SEQ_CONFIG, paper: 'https://arxiv.org/abs/1706.03762' }, build: transformerClassifier,
});

