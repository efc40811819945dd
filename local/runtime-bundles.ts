/**
 * The runtime bundles the stager's plugins take from the runtimes directory (on AWS the
 * function's layer; locally `resources/build/`): the Tomcat bundles java_web copies into
 * droplets, built from Debian's tomcat10 and libtomcat9-java packages. `dropwarden setup` (run by
 * `up` and before the tests) builds the ones missing, so a WAR stages without a manual step.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BUILD_SCRIPT, BUNDLE_FOR } from '../plugins/java_web/bundle.ts';
import { SetupBuildError } from './setup-errors.ts';

const SCRIPT = fileURLToPath(new URL(`../${BUILD_SCRIPT}`, import.meta.url));

/** The bundles `dir` lacks, by name (tomcat10, tomcat9). */
export function missingBundles(dir: string): string[] {
  return Object.values(BUNDLE_FOR).filter((name) => !existsSync(join(dir, name, 'bin', 'bootstrap.jar')));
}

/** Builds the missing bundles into `dir` (the script's lines shown as they come); a no-op when none is missing. */
export async function ensureRuntimeBundles(say: (line: string) => void, dir: string): Promise<void> {
  const missing = missingBundles(dir);
  if (!missing.length) return;
  const started = Date.now();
  say(`building the runtime bundles ${missing.join(' and ')} into ${dir} (once): ${BUILD_SCRIPT}`);
  const child = spawn(SCRIPT, [dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      say(`  ${line}`);
    });
  }
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => resolve(status ?? (signal ? 128 : 1)));
  });
  if (code !== 0) throw new SetupBuildError(`${BUILD_SCRIPT} failed (exit ${code}): ${lines.at(-1) ?? 'no output'}`);
  const still = missingBundles(dir);
  if (still.length) throw new SetupBuildError(`${BUILD_SCRIPT} finished but ${still.join(', ')} is still missing in ${dir}`);
  say(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
