import { HOST_STATE_DIR } from '../../../contracts/settings.ts';
import { SECCOMP_HELPER } from './containerizer/seccomp.ts';
import type { NetworkConfig } from './networker/networker.ts';
import type { DiskConfig } from './volumizer/disk-image.ts';

/** What the Linux warden backend needs to know about its host; every field has a default. */
export interface LinuxWardenConfig {
  /** One subdirectory per container handle: the source of truth for which containers exist. */
  depotDir: string;
  /** Where the default base rootfs and the /dev template are assembled (once, then reused). */
  rootfsDir: string;
  /** A base rootfs to use instead of assembling one from the host. */
  defaultRootfs?: string;
  /** Host directories bound read-only into containers that use the default rootfs. */
  hostBinds?: string[];
  /** Unprivileged job uids (and gids) are handed out from [first, first + size). */
  uidPool: { first: number; size: number };
  defaultGraceTimeS: number;
  /** Per job and per stream, held where the output is written; beyond it the job is killed (`command exceeded maximum output`). */
  maxOutputBytes: number;
  /** Where cgroup hierarchies are mounted (v1: one per controller below it; v2: the root). */
  cgroupRoot: string;
  /** Name of the cgroup below which every container gets its own. */
  cgroupParent: string;
  /** Forcing a cgroup version skips detection (tests use it with a fake v2 tree). */
  cgroupVersion?: 1 | 2;
  /** Processes per container; keeps a fork bomb inside. */
  pidsLimit: number;
  /** Grace between SIGTERM and SIGKILL on stop. */
  stopTimeoutMs: number;
  /** How often containers are checked for OOM kills. */
  pollIntervalMs: number;
  user: { name: string; home: string };
  /** A static tini: the init of every container (exec'd from the host, so rootfs need not have it). */
  tiniPath: string;
  rsyncPath: string;
  /**
   * The seccomp helper every unprivileged job starts under (containerizer/seccomp/dw-seccomp.c,
   * built by `dropwarden setup` or its build.sh); '' runs unprivileged jobs unfiltered.
   */
  seccompHelper: string;
  /** Container networking (a /30 each, net_in, net_out, limit_bandwidth); false: loopback only. */
  network: NetworkConfig | false;
  /** limit_disk through a per-container ext4 image; false: no image, limit_disk refused. */
  disk: DiskConfig | false;
}

export const DEFAULT_CONFIG: LinuxWardenConfig = {
  depotDir: `${HOST_STATE_DIR}/depot`,
  rootfsDir: `${HOST_STATE_DIR}/rootfs`,
  uidPool: { first: 20000, size: 10000 },
  defaultGraceTimeS: 300,
  maxOutputBytes: 10 * 1024 * 1024,
  cgroupRoot: '/sys/fs/cgroup',
  cgroupParent: 'dropwarden',
  pidsLimit: 1024,
  stopTimeoutMs: 10_000,
  pollIntervalMs: 250,
  user: { name: 'vcap', home: '/home/vcap' },
  tiniPath: '/usr/bin/tini-static',
  rsyncPath: '/usr/bin/rsync',
  seccompHelper: SECCOMP_HELPER,
  network: {
    // Shared address space (RFC 6598, CGNAT): outside 10/8, 172.16/12 and 192.168/16, where VPCs,
    // Docker bridges and office networks live, and never routed on the internet. A /16 of it:
    // 16 384 containers of a /30 each.
    pool: '100.96.0.0/16',
    // Above the kernel's default ephemeral range (32768-60999), as the original warden's.
    portPool: { first: 61001, size: 4000 },
    prefix: 'dw',
    mtu: 1500,
  },
  // 200 000 inodes a container, as Diego's cells give: an inode limit's ballast (a symlink per
  // inode held back, ~20 µs and ~300 bytes of host disk each) is then at most a few seconds' work.
  disk: { maxBytes: 64 * 1024 ** 3, maxInodes: 200_000 },
};

export function resolveConfig(partial: Partial<LinuxWardenConfig> = {}): LinuxWardenConfig {
  const network = partial.network === false ? false : { ...(DEFAULT_CONFIG.network as NetworkConfig), ...partial.network };
  const disk = partial.disk === false ? false : { ...(DEFAULT_CONFIG.disk as DiskConfig), ...partial.disk };
  return {
    ...DEFAULT_CONFIG,
    ...partial,
    uidPool: { ...DEFAULT_CONFIG.uidPool, ...partial.uidPool },
    user: { ...DEFAULT_CONFIG.user, ...partial.user },
    network,
    disk,
  };
}
