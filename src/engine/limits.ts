// Bounds on numbers that reach libtorch from outside (arguments, environment, recipes, checkpoints).
// A module without the addon, so that the CLI and recipe checks can use it before libtorch loads.

/** The most intra-op threads libtorch is given: an unbounded count deadlocks it on the first op. */
export const MAX_THREADS = 1024;
