// Recurrent layers (RNN, LSTM, GRU) over libtorch's fused kernels, with PyTorch's parameter
// names (weight_ih_l0, bias_hh_l1_reverse, ...), gate order (LSTM i,f,g,o; GRU r,z,n), layouts
// and initialisation, so nn.LSTM / nn.GRU / nn.RNN state dicts load by name.
import { F, empty, tidy, zeros, type Tensor } from '../engine/index.js';
import { Module, Parameter } from './module.js';
import { uniform_ } from './init.js';

export interface RNNOptions {
  /** stacked layers (default 1) */
  numLayers?: number;
  /** b_ih and b_hh (default true) */
  bias?: boolean;
  /** input and output are [N, T, F] instead of [T, N, F]; h_n stays [layers * directions, N, H] */
  batchFirst?: boolean;
  /** dropout on the outputs of each layer except the last, in training (default 0) */
  dropout?: number;
  bidirectional?: boolean;
}

type Mode = 'LSTM' | 'GRU' | 'RNN_TANH' | 'RNN_RELU';
const GATES: Record<Mode, number> = { LSTM: 4, GRU: 3, RNN_TANH: 1, RNN_RELU: 1 };
const LABEL: Record<Mode, string> = { LSTM: 'LSTM', GRU: 'GRU', RNN_TANH: 'RNN', RNN_RELU: 'RNN' };

/** The shared machinery: parameters in PyTorch's _flat_weights order, input checks, hidden-state defaults. */
abstract class RNNBase<H> extends Module<[Tensor, H?], [Tensor, H]> {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  /** the weights in the order the fused kernels take them: per layer and direction w_ih, w_hh, b_ih, b_hh */
  readonly #flatNames: string[] = [];

  constructor(protected readonly mode: Mode, readonly inputSize: number, readonly hiddenSize: number, o: RNNOptions = {}) {
    super();
    this.numLayers = o.numLayers ?? 1;
    this.bias = o.bias ?? true;
    this.batchFirst = o.batchFirst ?? false;
    this.dropout = o.dropout ?? 0;
    this.bidirectional = o.bidirectional ?? false;
    this.#check();
    const gates = GATES[mode] * hiddenSize;
    for (let layer = 0; layer < this.numLayers; layer++) {
      const layerIn = layer === 0 ? inputSize : hiddenSize * this.numDirections;
      for (const suffix of this.bidirectional ? ['', '_reverse'] : ['']) {
        const shapes: [string, number[]][] = [[`weight_ih_l${layer}${suffix}`, [gates, layerIn]], [`weight_hh_l${layer}${suffix}`, [gates, hiddenSize]]];
        if (this.bias) shapes.push([`bias_ih_l${layer}${suffix}`, [gates]], [`bias_hh_l${layer}${suffix}`, [gates]]);
        for (const [name, shape] of shapes) {
          Object.assign(this, { [name]: new Parameter(empty(shape)) });
          this.#flatNames.push(name);
        }
      }
    }
    this.resetParameters();
  }

  #check(): void {
    const name = LABEL[this.mode];
    for (const [k, v] of [['inputSize', this.inputSize], ['hiddenSize', this.hiddenSize], ['numLayers', this.numLayers]] as const) {
      if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`${name}: ${k} must be a positive integer, got ${v}`);
    }
    if (!(this.dropout >= 0 && this.dropout <= 1)) throw new RangeError(`${name}: dropout must be in [0, 1], got ${this.dropout}`);
  }

  get numDirections(): number {
    return this.bidirectional ? 2 : 1;
  }

  /** PyTorch's init: every weight and bias uniform in [-1/sqrt(hidden), 1/sqrt(hidden)]. */
  resetParameters(): void {
    const bound = 1 / Math.sqrt(this.hiddenSize);
    for (const w of this.flatWeights()) uniform_(w, -bound, bound);
  }

  /** The parameters in the fused kernels' order (PyTorch's _flat_weights). */
  flatWeights(): Parameter[] {
    const own = new Map(this.ownParameters());
    return this.#flatNames.map((n) => own.get(n)!);
  }

  /** Validates x ([T, N, F], [N, T, F] with batchFirst, or unbatched [T, F]) and gives it a batch dim. */
  protected batched(x: Tensor): { input: Tensor; unbatched: boolean } {
    const name = LABEL[this.mode];
    if (x.ndim !== 2 && x.ndim !== 3) {
      throw new Error(`${name}: expected input of 2 (unbatched) or 3 dimensions, got shape [${x.shape.join(', ')}]`);
    }
    if (x.size(-1) !== this.inputSize) {
      throw new Error(`${name}: input.size(-1) must equal inputSize ${this.inputSize}, got shape [${x.shape.join(', ')}]`);
    }
    if (x.ndim === 3) return { input: x, unbatched: false };
    return { input: x.unsqueeze(this.batchFirst ? 0 : 1), unbatched: true };
  }

  /** A zero hidden state, or the given one checked against [layers * directions, N, hidden]. */
  protected hidden(h: Tensor | undefined, input: Tensor, unbatched: boolean, what: string): Tensor {
    const n = input.size(this.batchFirst ? 0 : 1);
    const want = [this.numLayers * this.numDirections, n, this.hiddenSize];
    if (h === undefined) return zeros(want, { dtype: input.dtype, device: input.device });
    const hb = unbatched ? h.unsqueeze(1) : h;
    if (hb.ndim !== 3 || hb.shape.some((d, i) => d !== want[i])) {
      throw new Error(`${LABEL[this.mode]}: expected ${what} of shape [${(unbatched ? [want[0], want[2]] : want).join(', ')}], got [${h.shape.join(', ')}]`);
    }
    return hb;
  }

  protected kernelOptions(): F.RecurrentOptions {
    return {
      hasBiases: this.bias, numLayers: this.numLayers, dropout: this.dropout, training: this.training,
      bidirectional: this.bidirectional, batchFirst: this.batchFirst,
    };
  }

  /** The GRU / RNN path: one hidden state in, [output, h_n] out. */
  protected runKernel(kernel: 'gru' | 'rnn_tanh' | 'rnn_relu', x: Tensor, hx?: Tensor): [Tensor, Tensor] {
    return tidy(() => {
      const { input, unbatched } = this.batched(x);
      const h0 = this.hidden(hx, input, unbatched, 'h_0');
      const [out, h] = F.recurrent(kernel, input, h0, this.flatWeights(), this.kernelOptions());
      return [unbatch(out, this.batchFirst ? 0 : 1, unbatched), unbatch(h, 1, unbatched)];
    });
  }

  override extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += ', bias=False';
    if (this.batchFirst) s += ', batch_first=True';
    if (this.dropout) s += `, dropout=${this.dropout}`;
    if (this.bidirectional) s += ', bidirectional=True';
    return s;
  }
}

/** Squeezes the batch dim back out for unbatched input. */
const unbatch = (t: Tensor, dim: number, unbatched: boolean): Tensor => (unbatched ? t.squeeze(dim) : t);

/**
 * An Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu).
 * forward(x, h0?) returns [output, h_n]: output [T, N, D*H] (or [N, T, D*H] with batchFirst).
 */
export class RNN extends RNNBase<Tensor> {
  constructor(inputSize: number, hiddenSize: number, o: RNNOptions & { nonlinearity?: 'tanh' | 'relu' } = {}) {
    const nl = o.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu') throw new Error(`RNN: nonlinearity must be 'tanh' or 'relu', got '${String(nl)}'`);
    super(nl === 'tanh' ? 'RNN_TANH' : 'RNN_RELU', inputSize, hiddenSize, o);
  }
  get nonlinearity(): 'tanh' | 'relu' {
    return this.mode === 'RNN_TANH' ? 'tanh' : 'relu';
  }
  forward(x: Tensor, h0?: Tensor): [Tensor, Tensor] {
    return this.runKernel(this.mode === 'RNN_TANH' ? 'rnn_tanh' : 'rnn_relu', x, h0);
  }
  override extraRepr(): string {
    return super.extraRepr() + (this.mode === 'RNN_RELU' ? ", nonlinearity='relu'" : '');
  }
}

/** A GRU with PyTorch's gate order r, z, n. forward(x, h0?) returns [output, h_n]. */
export class GRU extends RNNBase<Tensor> {
  constructor(inputSize: number, hiddenSize: number, o: RNNOptions = {}) {
    super('GRU', inputSize, hiddenSize, o);
  }
  forward(x: Tensor, h0?: Tensor): [Tensor, Tensor] {
    return this.runKernel('gru', x, h0);
  }
}

/** An LSTM with PyTorch's gate order i, f, g, o. forward(x, [h0, c0]?) returns [output, [h_n, c_n]]. */
export class LSTM extends RNNBase<[Tensor, Tensor]> {
  constructor(inputSize: number, hiddenSize: number, o: RNNOptions = {}) {
    super('LSTM', inputSize, hiddenSize, o);
  }
  forward(x: Tensor, hx?: [Tensor, Tensor]): [Tensor, [Tensor, Tensor]] {
    return tidy(() => {
      const { input, unbatched } = this.batched(x);
      const h0 = this.hidden(hx?.[0], input, unbatched, 'h_0');
      const c0 = this.hidden(hx?.[1], input, unbatched, 'c_0');
      const [out, h, c] = F.lstm(input, [h0, c0], this.flatWeights(), this.kernelOptions());
      const batchDim = this.batchFirst ? 0 : 1;
      return [unbatch(out, batchDim, unbatched), [unbatch(h, 1, unbatched), unbatch(c, 1, unbatched)]];
    });
  }
}
