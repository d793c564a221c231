// How createModel reaches the pretrained weights: pretrained.ts installs the loader when it is
// imported (convkit/models imports it). The registry reads it from here instead of importing
// pretrained.ts, which would load libtorch (through nn) for every importer of the registry.
import type { Module } from '../nn/index.js';

export interface PretrainedLoader {
  /** throws when the model has no published weights */
  check(name: string): void;
  load(model: Module<never[], unknown>, name: string): void;
}

let loader: PretrainedLoader | null = null;

export function setPretrainedLoader(l: PretrainedLoader): void {
  loader = l;
}

export function pretrainedLoader(): PretrainedLoader | null {
  return loader;
}
