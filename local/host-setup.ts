/**
 * Everything this machine needs before the local stack or the tests run, done once and reused:
 * the host checks and Debian packages (prerequisites.ts), wardend's seccomp helper (compiled
 * from containerizer/seccomp/), then the runtime bundles (runtime-bundles.ts). A second run
 * finds all of it in place and returns in well under a second.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { SECCOMP_BUILD_SCRIPT, SECCOMP_HELPER } from '../container-host/warden/linux/containerizer/seccomp.ts';
import { runtimesDir } from '../plugins/java_web/bundle.ts';
import { ensurePrerequisites } from './prerequisites.ts';
import { ensureRuntimeBundles } from './runtime-bundles.ts';
import { SetupBuildError } from './setup-errors.ts';

async function ensureSeccompHelper(say: (line: string) => void): Promise<void> {
  if (existsSync(SECCOMP_HELPER)) return;
  say(`building wardend's seccomp helper (once): ${SECCOMP_BUILD_SCRIPT}`);
  try {
    await promisify(execFile)(SECCOMP_BUILD_SCRIPT, [SECCOMP_HELPER]);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new SetupBuildError(`${SECCOMP_BUILD_SCRIPT} failed: ${stderr || (err as Error).message}`);
  }
}

/** `env`: the environment of the command (`setup`, `up`) that runs it. */
export async function setUpHost(say: (line: string) => void, env: NodeJS.ProcessEnv): Promise<void> {
  ensurePrerequisites(say, env);
  await ensureSeccompHelper(say);
  await ensureRuntimeBundles(say, runtimesDir(env));
}
