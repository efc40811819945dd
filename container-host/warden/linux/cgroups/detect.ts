import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostRequirementError } from '../errors.ts';
import type { CgroupDriver } from './types.ts';
import { CgroupV1Driver, findV1Mounts } from './v1.ts';
import { CgroupV2Driver } from './v2.ts';

/**
 * v1 when the memory controller is bound to a v1 hierarchy (a hybrid host's v2 mount then has
 * no controllers worth using); v2 when the root is a cgroup2 mount with memory in it.
 */
export function detectCgroups(root: string, parent: string, force?: 1 | 2): CgroupDriver {
  if (force === 2) return new CgroupV2Driver(root, parent);
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  if (force === 1 || findV1Mounts(mountinfo).memory) return new CgroupV1Driver(parent, findV1Mounts(mountinfo));
  const controllers = join(root, 'cgroup.controllers');
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').includes('memory')) return new CgroupV2Driver(root, parent);
  throw new HostRequirementError(`no usable cgroup hierarchy: no v1 memory controller mounted and no cgroup v2 with memory at ${root}`);
}
