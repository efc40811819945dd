/**
 * The buildpacks this stager offers, in the order they are asked: `DROPWARDEN_BUILDPACKS`, a
 * colon-separated list of directories, each holding bin/detect, bin/compile and bin/release.
 * Configured by the operator, never taken from a request.
 */
import { access, constants } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { PluginError, type PluginSettings } from '../api/types.ts';

export interface Buildpack {
  /** The directory's name, shown in logs and errors. */
  name: string;
  dir: string;
}

export const SCRIPTS = ['detect', 'compile', 'release'] as const;

export function configuredBuildpacks(env: PluginSettings): Buildpack[] {
  return (env.DROPWARDEN_BUILDPACKS ?? '')
    .split(':')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((dir) => ({ name: basename(dir), dir }));
}

/** Refuses a configured buildpack that cannot be run: an operator's mistake, named precisely. */
export async function checkBuildpack(bp: Buildpack): Promise<void> {
  if (!isAbsolute(bp.dir)) throw new PluginError(`buildpack ${bp.dir} (DROPWARDEN_BUILDPACKS) must be an absolute path`);
  for (const script of SCRIPTS) {
    try {
      await access(join(bp.dir, 'bin', script), constants.X_OK);
    } catch {
      throw new PluginError(`buildpack ${bp.name} has no executable bin/${script} (${bp.dir})`);
    }
  }
}
