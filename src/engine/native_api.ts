// The native addon's surface (native/*.cc), typed: every function it exports with the
// arguments it decodes and what it returns. Only src/engine uses it (and src/distributed, for the
// c10d objects of native/distributed.cc); everything above sees
// Tensors. test/engine/native.test.ts checks that this list and the addon's agree.

/** A tensor's id in the addon's handle table (native/common.h): a plain number. */
export type Handle = number & { readonly __handle: unique symbol };

type H = Handle;
/** An optional tensor: undefined (or null) for none. */
type OptH = H | undefined;
/** A list of integers; a single number stands for a list of one. */
type Ints = number | number[];
/** A c10::ScalarType code (src/engine/dtype.ts). */
type DtypeCode = number;
type Scalar = number | boolean;

/** A native fused convolution (an N-API external): weights folded and packed for oneDNN. */
export type FusedConvState = object & { readonly __fusedConv: unique symbol };

export interface HandleCounts {
  /** tensors in the table now */
  live: number;
  /** tensors ever put in the table */
  created: number;
  /** tensors freed by dispose() */
  disposed: number;
  /** tensors freed by the backstop after their JS object was collected */
  collected: number;
}

export interface Native {
  // ---- lifetime and metadata (tensor.cc) ----
  dispose(x: H): void;
  collect(x: H): void;
  isDisposed(x: H): boolean;
  handleCounts(): HandleCounts;
  shape(x: H): number[];
  strides(x: H): number[];
  dtype(x: H): DtypeCode;
  device(x: H): string;
  numel(x: H): number;
  isContiguous(x: H): boolean;
  isChannelsLast(x: H): boolean;
  sharesStorage(a: H, b: H): boolean;
  item(x: H): number | boolean;

  // ---- creation and read-back ----
  fromBuffer(data: ArrayBufferView, shape: Ints, dtype: DtypeCode): H;
  toBuffer(x: H): ArrayBuffer;
  alias(x: H): ArrayBuffer;
  empty(shape: Ints, dtype: DtypeCode, device?: string): H;
  zeros(shape: Ints, dtype: DtypeCode, device?: string): H;
  ones(shape: Ints, dtype: DtypeCode, device?: string): H;
  full(shape: Ints, value: Scalar, dtype: DtypeCode, device?: string): H;
  arange(start: number, end: number, step: number, dtype: DtypeCode, device?: string): H;
  linspace(start: number, end: number, steps: number, dtype: DtypeCode, device?: string): H;
  eye(n: number, dtype: DtypeCode, device?: string): H;
  rand(shape: Ints, dtype: DtypeCode, device?: string): H;
  randn(shape: Ints, dtype: DtypeCode, device?: string): H;
  randint(low: number, high: number, shape: Ints, dtype: DtypeCode, device?: string): H;
  randperm(n: number, dtype: DtypeCode, device?: string): H;
  bernoulli(probs: H, p?: number): H;
  multinomial(probs: H, numSamples: number, replacement: boolean): H;
  normal_(x: H, mean: number, std: number): void;
  uniform_(x: H, from: number, to: number): void;
  manualSeed(seed: number): void;
  manualSeedCpu(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;

  // ---- conversion ----
  to(x: H, device?: string, dtype?: DtypeCode): H;
  clone(x: H): H;
  contiguous(x: H, channelsLast?: boolean): H;

  // ---- autograd ----
  requiresGrad(x: H): boolean;
  setRequiresGrad(x: H, value: boolean): void;
  isLeaf(x: H): boolean;
  grad(x: H): H | null;
  setGrad(x: H, grad: OptH): void;
  gradFn(x: H): string | null;
  detach(x: H): H;
  backward(x: H, gradient: OptH, retainGraph: boolean): void;
  setGradEnabled(enabled: boolean): void;
  isGradEnabled(): boolean;

  // ---- engine settings ----
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  libtorchVersion(): string;
  setAutocast(enabled: boolean, dtype: DtypeCode): void;
  startProfile(tracePath: string): void;
  stopProfile(): void;
  torchWarnings(): string[];

  // ---- the CPU memory cache (allocator.cc) ----
  allocatorEnabled(): boolean;
  emptyCache(): void;
  cachedBytes(): number;
  setCacheLimit(bytes: number): void;
  /** [hits, misses] */
  cacheCounts(): [number, number];
  cacheLimit(): number;

  // ---- views (ops.cc) ----
  reshape(x: H, shape: Ints): H;
  view(x: H, shape: Ints): H;
  permute(x: H, dims: Ints): H;
  transpose(x: H, dim0: number, dim1: number): H;
  squeeze(x: H, dim?: number): H;
  unsqueeze(x: H, dim: number): H;
  expand(x: H, shape: Ints): H;
  narrow(x: H, dim: number, start: number, length: number): H;
  slice(x: H, dim: number, start?: number, end?: number, step?: number): H;
  select(x: H, dim: number, index: number): H;
  flatten(x: H, startDim: number, endDim: number): H;
  unflatten(x: H, dim: number, sizes: Ints): H;
  asStrided(x: H, size: Ints, stride: Ints, storageOffset: number): H;
  flip(x: H, dims: Ints): H;
  roll(x: H, shifts: Ints, dims: Ints): H;
  repeat(x: H, times: Ints): H;
  tril(x: H, diagonal: number): H;
  triu(x: H, diagonal: number): H;

  // ---- pointwise ----
  add(a: H, b: H, alpha?: Scalar): H;
  sub(a: H, b: H, alpha?: Scalar): H;
  mul(a: H, b: H): H;
  div(a: H, b: H): H;
  pow(a: H, b: H): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  addScalar(a: H, s: Scalar): H;
  subScalar(a: H, s: Scalar): H;
  rsubScalar(a: H, s: Scalar): H;
  mulScalar(a: H, s: Scalar): H;
  divScalar(a: H, s: Scalar): H;
  powScalar(a: H, s: Scalar): H;
  neg(x: H): H;
  abs(x: H): H;
  exp(x: H): H;
  log(x: H): H;
  sqrt(x: H): H;
  rsqrt(x: H): H;
  sign(x: H): H;
  floor(x: H): H;
  ceil(x: H): H;
  round(x: H): H;
  sin(x: H): H;
  cos(x: H): H;
  reciprocal(x: H): H;
  erfinv(x: H): H;
  clamp(x: H, min?: number, max?: number): H;
  where(condition: H, a: H, b: H): H;
  lerp(a: H, end: H, weight: Scalar): H;
  logicalNot(x: H): H;
  logicalAnd(a: H, b: H): H;
  logicalOr(a: H, b: H): H;
  isnan(x: H): H;
  isfinite(x: H): H;
  maskedFill(x: H, mask: H, value: Scalar): H;

  // ---- comparisons ----
  eq(a: H, b: H): H;
  ne(a: H, b: H): H;
  lt(a: H, b: H): H;
  le(a: H, b: H): H;
  gt(a: H, b: H): H;
  ge(a: H, b: H): H;
  eqScalar(a: H, s: Scalar): H;
  neScalar(a: H, s: Scalar): H;
  ltScalar(a: H, s: Scalar): H;
  leScalar(a: H, s: Scalar): H;
  gtScalar(a: H, s: Scalar): H;
  geScalar(a: H, s: Scalar): H;
  allclose(a: H, b: H, rtol: number, atol: number): boolean;
  equal(a: H, b: H): boolean;

  // ---- reductions: (tensor, dims | undefined, keepdim) ----
  sum(x: H, dims: Ints | undefined, keepdim: boolean, dtype?: DtypeCode): H;
  mean(x: H, dims: Ints | undefined, keepdim: boolean): H;
  amax(x: H, dims: Ints | undefined, keepdim: boolean): H;
  amin(x: H, dims: Ints | undefined, keepdim: boolean): H;
  maxDim(x: H, dim: number, keepdim: boolean): [H, H];
  minDim(x: H, dim: number, keepdim: boolean): [H, H];
  argmax(x: H, dim?: number, keepdim?: boolean): H;
  argmin(x: H, dim?: number, keepdim?: boolean): H;
  var(x: H, dims: Ints | undefined, keepdim: boolean, correction: number): H;
  std(x: H, dims: Ints | undefined, keepdim: boolean, correction: number): H;
  prod(x: H, dim?: number, keepdim?: boolean): H;
  norm(x: H, p: Scalar, dims?: Ints, keepdim?: boolean): H;
  logsumexp(x: H, dims: Ints, keepdim: boolean): H;
  cumsum(x: H, dim: number): H;
  all(x: H): H;
  any(x: H): H;
  bincount(x: H, weights?: OptH, minlength?: number): H;

  // ---- linear algebra, joining and indexing ----
  matmul(a: H, b: H): H;
  mm(a: H, b: H): H;
  bmm(a: H, b: H): H;
  baddbmm(x: H, b1: H, b2: H, beta: Scalar, alpha: Scalar): H;
  linear(x: H, weight: H, bias: OptH): H;
  cat(xs: H[], dim: number): H;
  stack(xs: H[], dim: number): H;
  split(x: H, splitSize: number, dim: number): H[];
  splitWithSizes(x: H, sizes: Ints, dim: number): H[];
  chunk(x: H, chunks: number, dim: number): H[];
  indexSelect(x: H, dim: number, index: H): H;
  gather(x: H, dim: number, index: H): H;
  scatter(x: H, dim: number, index: H, src: H): H;
  scatterAdd(x: H, dim: number, index: H, src: H): H;
  maskedSelect(x: H, mask: H): H;
  nonzero(x: H): H;
  topk(x: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(x: H, dim: number, descending: boolean): [H, H];
  argsort(x: H, dim: number, descending: boolean): H;
  oneHot(x: H, numClasses: number): H;

  // ---- in place ----
  add_(x: H, other: H, alpha?: Scalar): void;
  addScalar_(x: H, s: Scalar): void;
  sub_(x: H, other: H, alpha?: Scalar): void;
  mul_(x: H, other: H): void;
  mulScalar_(x: H, s: Scalar): void;
  div_(x: H, other: H): void;
  divScalar_(x: H, s: Scalar): void;
  addcmul_(x: H, t1: H, t2: H, value: Scalar): void;
  addcdiv_(x: H, t1: H, t2: H, value: Scalar): void;
  lerp_(x: H, end: H, weight: Scalar): void;
  copy_(x: H, src: H): void;
  zero_(x: H): void;
  fill_(x: H, value: Scalar): void;
  clamp_(x: H, min?: number, max?: number): void;
  sqrt_(x: H): void;
  erfinv_(x: H): void;
  maskedFill_(x: H, mask: H, value: Scalar): void;

  // ---- multi-tensor (foreach) ----
  foreachAdd_(a: H[], b: H[], alpha: Scalar): void;
  foreachAddScalar_(a: H[], s: Scalar): void;
  foreachMulScalar_(a: H[], s: Scalar): void;
  foreachAddcmul_(a: H[], b: H[], c: H[], value: Scalar): void;
  foreachAddcdiv_(a: H[], b: H[], c: H[], value: Scalar): void;
  foreachSqrt(a: H[]): H[];
  foreachZero_(a: H[]): void;
  foreachNorm(a: H[], p: Scalar): H[];
  foreachAdd(a: H[], b: H[], alpha: Scalar): H[];
  foreachAddScalar(a: H[], s: Scalar): H[];
  foreachSub_(a: H[], b: H[], alpha: Scalar): void;
  foreachSub(a: H[], b: H[], alpha: Scalar): H[];
  foreachMul(a: H[], b: H[]): H[];
  foreachMulTensor_(a: H[], s: H): void;
  foreachDivScalarList_(a: H[], scalars: number[]): void;
  foreachAddcmul(a: H[], b: H[], c: H[], value: Scalar): H[];
  foreachAddcdivScalarList_(a: H[], b: H[], c: H[], scalars: number[]): void;
  foreachMaximum_(a: H[], b: H[]): void;
  foreachNeg(a: H[]): H[];
  foreachSqrt_(a: H[]): void;
  foreachCopy_(dst: H[], src: H[]): void;
  foreachClamp_(a: H[], min?: number, max?: number): void;
  /** torch.optim.SGD's update of every parameter in one pass (bufs: [] without momentum; init: they are new). */
  sgdStep_(params: H[], grads: H[], bufs: H[], lr: number, momentum: number, dampening: number, weightDecay: number,
    nesterov: boolean, maximize: boolean, init: boolean): void;
  /** torch.optim.Adam / AdamW's update in one pass (maxExpAvgSqs: [] without AMSGrad; hyper: [lr, beta1, beta2, eps, weightDecay]). */
  adamStep_(params: H[], grads: H[], expAvgs: H[], expAvgSqs: H[], maxExpAvgSqs: H[], stepSizes: number[], bc2Sqrts: number[],
    hyper: number[], decoupled: boolean, maximize: boolean): void;
  /** RMSprop's update in one pass (gradAvgs: [] unless centered; bufs: [] without momentum; hyper: [lr, alpha, eps, weightDecay, momentum]). */
  rmspropStep_(params: H[], grads: H[], squareAvgs: H[], gradAvgs: H[], bufs: H[], hyper: number[], decoupled: boolean,
    maximize: boolean, tfStyle: boolean, lrInMomentum: boolean): void;

  // ---- convolution, normalisation, pooling, resizing (nn_ops.cc, conv2d.cc) ----
  conv2d(x: H, weight: H, bias: OptH, stride: Ints, padding: Ints | 'same' | 'valid', dilation: Ints, groups: number): H;
  conv1d(x: H, weight: H, bias: OptH, stride: Ints, padding: Ints | 'same' | 'valid', dilation: Ints, groups: number): H;
  convTranspose2d(x: H, weight: H, bias: OptH, stride: Ints, padding: Ints, outputPadding: Ints, groups: number, dilation: Ints): H;
  /** 'auto' | 'gemm' | 'onednn': how bf16 and depthwise convolutions compute weight gradients */
  setConvWgrad(mode: string): void;
  /** false where the addon was built without oneDNN's headers (native/fused_conv.cc) */
  fusedConvAvailable(): boolean;
  /** the state of one fused eval-mode convolution; activation '' for none */
  fusedConvCreate(stride: number[], padding: number[], dilation: number[], groups: number, activation: string, residual: boolean): FusedConvState;
  fusedConv(state: FusedConvState, x: H, weight: H, bias: OptH, normWeight: OptH, normBias: OptH, runningMean: OptH, runningVar: OptH, eps: number, addend: OptH): H;
  batchNorm(x: H, runningMean: OptH, runningVar: OptH, weight: OptH, bias: OptH, training: boolean, momentum: number, eps: number, relu?: boolean, residual?: OptH): H;
  layerNorm(x: H, normalizedShape: Ints, weight: OptH, bias: OptH, eps: number): H;
  groupNorm(x: H, numGroups: number, weight: OptH, bias: OptH, eps: number): H;
  maxPool2d(x: H, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, ceilMode: boolean): H;
  avgPool2d(x: H, kernel: Ints, stride: Ints, padding: Ints, ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(x: H, outputSize: Ints): H;
  adaptiveMaxPool2d(x: H, outputSize: Ints): H;
  pad(x: H, padding: Ints, mode?: string, value?: Scalar): H;
  interpolate(x: H, size: Ints, mode: string, alignCorners: boolean, antialias: boolean): H;
  /** mode 0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros, 1 border, 2 reflection */
  gridSample(x: H, grid: H, mode: number, padding: number, alignCorners: boolean): H;
  affineGrid(theta: H, size: Ints, alignCorners: boolean): H;

  // ---- activations (nn_ops.cc, fast_grads.cc) ----
  relu(x: H): H;
  relu6(x: H): H;
  hardtanh(x: H, min: Scalar, max: Scalar): H;
  leakyRelu(x: H, negativeSlope: Scalar): H;
  elu(x: H, alpha: Scalar): H;
  gelu(x: H, approximate?: string): H;
  silu(x: H): H;
  sigmoid(x: H): H;
  tanh(x: H): H;
  hardswish(x: H): H;
  hardsigmoid(x: H): H;
  softplus(x: H, beta: Scalar, threshold: Scalar): H;
  mish(x: H): H;
  softmax(x: H, dim: number, dtype?: DtypeCode): H;
  logSoftmax(x: H, dim: number, dtype?: DtypeCode): H;
  relu_(x: H): H;
  silu_(x: H): H;

  // ---- regularisers and lookup ----
  dropout(x: H, p: number, training: boolean): H;
  featureDropout(x: H, p: number, training: boolean): H;
  embedding(weight: H, indices: H, paddingIdx?: number): H;
  /** quantization-aware training: round onto the integer grid and back (straight-through gradient) */
  fakeQuantPerTensor(x: H, scale: number, zeroPoint: number, qmin: number, qmax: number): H;
  /** the same, symmetric per channel along axis (scale: one float per channel) */
  fakeQuantPerChannel(w: H, scale: H, axis: number, qmin: number, qmax: number): H;

  // ---- recurrent layers over PyTorch's flat weight list ----
  lstm(x: H, hx: H[], weights: H[], hasBiases: boolean, numLayers: number, dropout: number, training: boolean, bidirectional: boolean, batchFirst: boolean): [H, H, H];
  gru(x: H, hx: H, weights: H[], hasBiases: boolean, numLayers: number, dropout: number, training: boolean, bidirectional: boolean, batchFirst: boolean): [H, H];
  rnnTanh(x: H, hx: H, weights: H[], hasBiases: boolean, numLayers: number, dropout: number, training: boolean, bidirectional: boolean, batchFirst: boolean): [H, H];
  rnnRelu(x: H, hx: H, weights: H[], hasBiases: boolean, numLayers: number, dropout: number, training: boolean, bidirectional: boolean, batchFirst: boolean): [H, H];

  // ---- losses: reduction 0 none, 1 mean, 2 sum ----
  crossEntropy(input: H, target: H, weight: OptH, reduction: number, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(input: H, target: H, weight: OptH, reduction: number, ignoreIndex: number): H;
  mseLoss(input: H, target: H, reduction: number): H;
  l1Loss(input: H, target: H, reduction: number): H;
  smoothL1Loss(input: H, target: H, reduction: number, beta: number): H;
  bceWithLogits(input: H, target: H, weight: OptH, posWeight: OptH, reduction: number): H;
  klDiv(input: H, target: H, reduction: number, logTarget: boolean): H;

  // ---- c10d: process groups, collectives, DDP's Reducer (distributed.cc) ----
  // Ids of groups, works and reducers are plain numbers of the addon's own tables.
  /**
   * rendezvous over TCPStore (rank 0 hosts it, or torchrun's agent when agentStore) and Gloo's
   * connections, the job's keys under prefix; resolves to a group id
   */
  distInit(rank: number, worldSize: number, masterAddr: string, masterPort: number, rendezvousTimeoutMs: number, timeoutMs: number, iface?: string, prefix?: string, agentStore?: boolean): Promise<number>;
  distDestroy(group: number): void;
  /** ranks whose heartbeat stopped within waitMs; [-1]: the store on rank 0 is unreachable */
  distDeadRanks(group: number, waitMs: number): number[];
  distStoreSet(group: number, key: string, value: string): void;
  distStoreGet(group: number, key: string): string | null;
  /** in place over contiguous tensors; returns a work id */
  distAllReduce(group: number, tensors: H[], op?: string): number;
  distBroadcast(group: number, tensors: H[], root: number): number;
  distBarrier(group: number): number;
  /** waits on the thread pool; the work id is spent */
  distWait(work: number): Promise<void>;
  distWaitSync(work: number): void;
  distIsCompleted(work: number): boolean;
  distBroadcastCoalesced(group: number, tensors: H[], root: number): void;
  /** the sum over ranks, differentiable (its gradient is the sum of every rank's gradient) */
  distAllReduceDiff(group: number, x: H): H;
  distReducer(group: number, params: H[], bucketBytes: number, firstBucketBytes: number, gradientAsBucketView: boolean, commHook: 'allreduce' | 'fp16'): number;
  /** elements in each bucket, in the order the buckets are reduced */
  distReducerBuckets(reducer: number): number[];
  distReducerPrepare(reducer: number): void;
  /** when each parameter's gradient was ready in the last backward pass, ms after distReducerPrepare */
  distReducerReadyTimes(reducer: number): number[];
  distReducerDestroy(reducer: number): void;
}
