// Pieces the commands share: loading user modules (--import) that register models or transforms,
// and the package's version.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError, type Parsed } from './args.js';

export const IMPORT_HELP = '  --import <module>     load a JS module first (it may register models with registerModel); repeatable';

/** Imports every --import module (user models / transforms register themselves on import). */
export async function importUserModules(p: Parsed, command: string): Promise<void> {
  const v = p.values.import;
  const list = Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  for (const m of list) {
    const url = m.startsWith('.') || path.isAbsolute(m) ? pathToFileURL(path.resolve(m)).href : m;
    try {
      await import(url);
    } catch (e) {
      throw new UsageError(`--import ${m}: cannot load it: ${(e as Error).message}`, command);
    }
  }
}

/**
 * A registered model's published weights in the cache, downloaded first (with a progress bar)
 * when missing; a model without them is a usage error naming those that have them.
 */
export async function fetchPretrainedWeights(model: string, command: string, download = true): Promise<void> {
  const { fetchPretrained, pretrainedEntry } = await import('../models/index.js');
  try {
    pretrainedEntry(model);
  } catch (e) {
    throw new UsageError(`--pretrained: ${(e as Error).message}`, command);
  }
  if (download) await fetchPretrained(model);
}

/** The first SIGINT or SIGTERM (Ctrl-C, a service manager's stop); the handlers are removed after it. */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(s);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export { packageVersion } from '../io/version.js';
