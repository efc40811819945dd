/**
 * The seccomp filter of unprivileged jobs: a small libseccomp program (seccomp/dw-seccomp.c)
 * that job.sh puts first in the chain. wardend tries it once at start: a helper that is missing,
 * or that lets a job create a user namespace, is refused with what to run.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostRequirementError } from '../errors.ts';
import { runHost } from '../host-command.ts';

export const SECCOMP_HELPER = fileURLToPath(new URL('./seccomp/build/dw-seccomp', import.meta.url));
export const SECCOMP_BUILD_SCRIPT = fileURLToPath(new URL('./seccomp/build.sh', import.meta.url));

export class SeccompUnusableError extends HostRequirementError {
  override name = 'SeccompUnusableError';
}

/** Runs `unshare --user true` under the helper: it must be refused, and `true` alone must run. */
export async function checkSeccompHelper(helper: string): Promise<void> {
  const fix = `build it with ${SECCOMP_BUILD_SCRIPT} (npx dropwarden setup does), or set seccompHelper to '' to run unprivileged jobs unfiltered`;
  if (!existsSync(helper)) throw new SeccompUnusableError(`the seccomp helper ${helper} is missing: ${fix}`);
  const plain = await runHost('checking the seccomp helper', [helper, 'true'], { allowFailure: true });
  if (plain.code !== 0)
    throw new SeccompUnusableError(`the seccomp helper ${helper} cannot run a program (exit ${plain.code}: ${plain.stderr.toString().trim()}): ${fix}`);
  const userns = await runHost('checking the seccomp helper', [helper, 'unshare', '--user', 'true'], { allowFailure: true });
  if (userns.code === 0) throw new SeccompUnusableError(`the seccomp helper ${helper} let a process create a user namespace: ${fix}`);
}
