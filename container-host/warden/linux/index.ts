import { tmpdir } from 'node:os';
import type { WardenService } from '../server/service.ts';
import { detectCgroups } from './cgroups/detect.ts';
import { resolveConfig, type LinuxWardenConfig } from './config.ts';
import { NamespaceContainerizer } from './containerizer/containerizer.ts';
import { checkOutputCapper, SupervisorJobs } from './containerizer/jobs.ts';
import { checkSeccompHelper } from './containerizer/seccomp.ts';
import { Depot } from './depot.ts';
import { RsyncCopier } from './files/copy.ts';
import { Gardener } from './gardener.ts';
import { LoopbackNetworker, VethNetworker, type Networker } from './networker/networker.ts';
import { OverlayVolumizer } from './volumizer/volumizer.ts';

export type { LinuxWardenConfig } from './config.ts';
export { DEFAULT_CONFIG, resolveConfig } from './config.ts';
export { Gardener } from './gardener.ts';
export { HostError, HostRequirementError } from './errors.ts';
export { RsyncUnusableError } from './files/copy.ts';
export { SeccompUnusableError } from './containerizer/seccomp.ts';
export { OutputCapperUnusableError } from './containerizer/jobs.ts';

export type LinuxWardenService = WardenService & {
  /** Stops timers; containers keep running and are restored by the next start. */
  close(): Promise<void>;
  destroyAll(): Promise<void>;
  leftoverCgroups(): string[];
};

/**
 * The Linux backend of wardend. Detects the cgroup version, reads the depot (restoring
 * containers whose init still runs, cleaning up the rest) and starts the OOM watcher.
 */
export async function createLinuxWardenService(partial: Partial<LinuxWardenConfig> = {}): Promise<LinuxWardenService> {
  const config = resolveConfig(partial);
  const copier = new RsyncCopier(config.rsyncPath);
  // Before anything is restored or created: a host rsync that cannot copy as the container's user is refused here.
  await copier.check(tmpdir());
  if (config.seccompHelper) await checkSeccompHelper(config.seccompHelper);
  await checkOutputCapper(tmpdir());
  let networker: Networker = new LoopbackNetworker();
  if (config.network) {
    const veth = new VethNetworker(config.network);
    await veth.start();
    networker = veth;
  }
  const gardener = new Gardener({
    config,
    depot: new Depot(config.depotDir),
    cgroups: detectCgroups(config.cgroupRoot, config.cgroupParent, config.cgroupVersion),
    containerizer: new NamespaceContainerizer({ tiniPath: config.tiniPath, user: config.user }),
    networker,
    volumizer: new OverlayVolumizer({ rootfsDir: config.rootfsDir, defaultRootfs: config.defaultRootfs, hostBinds: config.hostBinds, disk: config.disk }),
    copier,
    jobs: new SupervisorJobs(),
  });
  await gardener.start();
  return gardener;
}
