/**
 * The plugins this stager can run, by name. A request names a plugin from this allow-list
 * (never a path); without a name, plugins are asked in a fixed order and the first match wins.
 */
import type { AppSource, Detection, Plugin } from './api/types.ts';
import { standalone } from './standalone/index.ts';

export const PLUGINS: readonly Plugin[] = [standalone];

/** The detection order; `DROPWARDEN_DETECT_ORDER` (comma-separated names) overrides it. */
export const DEFAULT_DETECT_ORDER = ['standalone'];

export class UnknownFrameworkError extends Error {
  override name = 'UnknownFrameworkError';
}

export function findPlugin(name: string): Plugin {
  const wanted = name.toLowerCase();
  const plugin = PLUGINS.find((p) => p.name === wanted || p.aliases?.includes(wanted));
  if (!plugin) {
    const known = PLUGINS.flatMap((p) => [p.name, ...(p.aliases ?? [])]).sort();
    throw new UnknownFrameworkError(`unknown framework "${name}": this stager supports ${known.join(', ')}`);
  }
  return plugin;
}

export interface DetectionOutcome {
  plugin?: Plugin;
  candidates: Array<{ name: string } & Detection>;
}

export async function detectPlugin(app: AppSource, order = detectOrder()): Promise<DetectionOutcome> {
  const candidates: DetectionOutcome['candidates'] = [];
  let plugin: Plugin | undefined;
  for (const name of order) {
    const p = findPlugin(name);
    const d = await p.detect(app);
    candidates.push({ name: p.name, ...d });
    if (d.matched && !plugin) plugin = p;
  }
  return { plugin, candidates };
}

function detectOrder(): string[] {
  const raw = process.env.DROPWARDEN_DETECT_ORDER;
  return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT_DETECT_ORDER;
}
