/**
 * The plugins this stager can run, by name. A request names a plugin from this allow-list
 * (never a path); without a name, plugins are asked in a fixed order, every candidate's answer
 * is logged, and the first match wins.
 */
import type { AppSource, Detection, Plugin, PluginSettings } from './api/types.ts';
import { buildpack } from './buildpack/index.ts';
import { javaWeb } from './java_web/index.ts';
import { node } from './node/index.ts';
import { php } from './php/index.ts';
import { rack } from './rack/index.ts';
import { standalone } from './standalone/index.ts';
import { staticSite } from './static/index.ts';
import { wsgi } from './wsgi/index.ts';

/**
 * Every plugin, in the default detection order; `DROPWARDEN_DETECT_ORDER` (comma-separated
 * names) overrides the order.
 * - standalone first: a start command in the request (meta.command) means "run exactly this".
 * - java_web next: WEB-INF/ or a .war is unambiguous (a WAR may well carry a package.json
 *   for its front-end build);
 * - then the frameworks with a marker file of their own (package.json, config.ru or a Sinatra
 *   file, wsgi.py/app.py, index.php), most specific first;
 * - static next: many apps carry an index.html beside their real entry point;
 * - buildpack after every built-in plugin: the operator's buildpacks (DROPWARDEN_BUILDPACKS)
 *   take the apps nothing here knows (and any app that names framework "buildpack").
 */
export const PLUGINS: readonly Plugin[] = [standalone, javaWeb, node, rack, wsgi, php, staticSite, buildpack];

export const DEFAULT_DETECT_ORDER: readonly string[] = PLUGINS.map((p) => p.name);

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

export async function detectPlugin(app: AppSource, order: readonly string[] = detectOrder(app.settings)): Promise<DetectionOutcome> {
  const candidates: DetectionOutcome['candidates'] = [];
  let plugin: Plugin | undefined;
  for (const name of order) {
    const p = findPlugin(name);
    if (plugin && p.detectsLast) {
      candidates.push({ name: p.name, matched: false, reason: `not asked: ${plugin.name} matched first` });
      continue;
    }
    const d = await p.detect(app);
    candidates.push({ name: p.name, ...d });
    if (d.matched && !plugin) plugin = p;
  }
  return { plugin, candidates };
}

/** DROPWARDEN_DETECT_ORDER from the stager's settings (the stager passes its own; by default its environment). */
export function detectOrder(settings: PluginSettings): string[] {
  const raw = settings.DROPWARDEN_DETECT_ORDER;
  if (!raw) return [...DEFAULT_DETECT_ORDER];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names) {
    try {
      findPlugin(name);
    } catch (err) {
      // An operator's typo, not the request's framework: name the setting that holds it.
      throw new UnknownFrameworkError(`DROPWARDEN_DETECT_ORDER: ${(err as Error).message}`);
    }
  }
  return names;
}
