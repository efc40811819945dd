/**
 * Everything this machine needs before the local stack or the tests run, done once and reused:
 * the host checks and Debian packages (prerequisites.ts), then the runtime bundles
 * (runtime-bundles.ts). A second run finds both in place and returns in well under a second.
 */
import { ensurePrerequisites } from './prerequisites.ts';
import { ensureRuntimeBundles } from './runtime-bundles.ts';

export async function setUpHost(say: (line: string) => void): Promise<void> {
  ensurePrerequisites(say);
  await ensureRuntimeBundles(say);
}
