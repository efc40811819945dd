/**
 * The Tomcat bundles that `resources/tomcat/build-bundle.sh` builds from Debian's packages,
 * found under the runtimes directory: `DROPWARDEN_RUNTIMES_DIR` (on Lambda `/opt`, the runtime
 * layer), else the repository's `resources/build/` (local runs and tests).
 */
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exists } from '../api/files.ts';
import { SETTING } from '../../contracts/settings.ts';
import { PluginError, type PluginSettings } from '../api/types.ts';
import type { ServletApi } from './servlet-api.ts';

export const DEFAULT_RUNTIMES_DIR = fileURLToPath(new URL('../../resources/build/', import.meta.url));
export const BUILD_SCRIPT = 'resources/tomcat/build-bundle.sh';

/** Where the Tomcat bundles are: DROPWARDEN_RUNTIMES_DIR (a plugin passes its ctx.settings; host tools, the environment). */
export function runtimesDir(env: PluginSettings): string {
  return env[SETTING.runtimesDir] || DEFAULT_RUNTIMES_DIR;
}

export const BUNDLE_FOR: Record<ServletApi, string> = { jakarta: 'tomcat10', javax: 'tomcat9' };

export interface TomcatBundle {
  name: string;
  dir: string;
  version: string;
}

export async function findBundle(api: ServletApi, env: PluginSettings): Promise<TomcatBundle> {
  const name = BUNDLE_FOR[api];
  const dir = join(runtimesDir(env), name);
  if (!(await exists(join(dir, 'bin', 'bootstrap.jar')))) {
    // The operator's mistake, not the user's: say exactly what is missing and how to build it.
    throw new PluginError(`Web application staging failed: the ${name} bundle is not installed on this stager (${dir}); build it with ${BUILD_SCRIPT}`);
  }
  const version = (await readFile(join(dir, 'VERSION'), 'utf8').catch(() => '')).trim() || 'unknown';
  return { name, dir, version };
}

/** Copies the bundle into the droplet as `tomcat/`: files only, no links back to the stager. */
export async function copyBundle(bundle: TomcatBundle, dest: string): Promise<void> {
  await cp(bundle.dir, dest, { recursive: true, dereference: true, errorOnExist: true, force: false });
}
