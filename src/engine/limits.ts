// Bounds on numbers that reach libtorch from outside (arguments, environment, recipes, checkpoints).
// A module without the addon, so that the CLI and recipe checks can use it before libtorch loads.

/** The most intra-op threads libtorch is given: an unbounded count deadlocks it on the first op. */
export const MAX_THREADS = 1024;
/** The largest batch (training or evaluation) a recipe or an argument may ask for. */
export const MAX_BATCH = 1 << 16;
/** The largest image side, in pixels, an input size may have. */
export const MAX_IMAGE_SIDE = 8192;
/** The most classes a classifier head may have (ImageNet-21k has 21,841). */
export const MAX_CLASSES = 100_000;
/** The most input channels. */
export const MAX_CHANNELS = 1024;
