import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MemoryStat } from '../../server/service.ts';
import { HostRequirementError } from '../errors.ts';
import { listDirs, memoryLimitBelowUsage, mkdirCgroup, readCgroupFile, readPids, removeQuietly, rmdirCgroup, writeCgroupFile } from './files.ts';
import { memoryStatFromV1, parseFlatKeyed } from './memory-stat.ts';
import type { CgroupDriver, ContainerCgroup, CpuStat } from './types.ts';

const CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'] as const;
type Controller = (typeof CONTROLLERS)[number];

/** Where each v1 controller is mounted, from mountinfo (cpu and cpuacct are often co-mounted). */
export function findV1Mounts(mountinfo: string): Partial<Record<Controller, string>> {
  const found: Partial<Record<Controller, string>> = {};
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const [fstype, , superOpts = ''] = post.split(' ');
    if (fstype !== 'cgroup') continue;
    const mountPoint = pre.split(' ')[4];
    const opts = superOpts.split(',');
    for (const c of CONTROLLERS) if (opts.includes(c) && !found[c]) found[c] = mountPoint;
  }
  return found;
}

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly #mounts: Record<Controller, string>;
  readonly #parent: string;

  constructor(parent: string, mounts: Partial<Record<Controller, string>>) {
    const missing = CONTROLLERS.filter((c) => !mounts[c]);
    if (missing.length) throw new HostRequirementError(`cgroup v1 controllers not mounted: ${missing.join(', ')}`);
    this.#mounts = mounts as Record<Controller, string>;
    this.#parent = parent;
  }

  static fromHost(parent: string): CgroupV1Driver {
    return new CgroupV1Driver(parent, findV1Mounts(readFileSync('/proc/self/mountinfo', 'utf8')));
  }

  #dirs(handle: string): Record<Controller, string> {
    const dirs = {} as Record<Controller, string>;
    for (const c of CONTROLLERS) dirs[c] = join(this.#mounts[c], this.#parent, handle);
    return dirs;
  }

  create(handle: string): ContainerCgroup {
    const cgroup = new CgroupV1(this.#dirs(handle));
    try {
      for (const procs of cgroup.procsFiles) mkdirCgroup(dirname(procs));
    } catch (e) {
      removeQuietly(cgroup); // the hierarchies already made: the caller never gets them
      throw e;
    }
    return cgroup;
  }

  open(handle: string): ContainerCgroup {
    return new CgroupV1(this.#dirs(handle));
  }

  list(): string[] {
    const names = new Set<string>();
    for (const mount of new Set(Object.values(this.#mounts))) {
      for (const name of listDirs(join(mount, this.#parent))) names.add(name);
    }
    return [...names];
  }
}

class CgroupV1 implements ContainerCgroup {
  readonly #dirs: Record<Controller, string>;
  readonly procsFiles: string[];

  constructor(dirs: Record<Controller, string>) {
    this.#dirs = dirs;
    this.procsFiles = [...new Set(Object.values(dirs))].map((d) => join(d, 'cgroup.procs'));
  }

  setMemoryLimit(bytes: number): void {
    const limit = join(this.#dirs.memory, 'memory.limit_in_bytes');
    const memsw = join(this.#dirs.memory, 'memory.memsw.limit_in_bytes');
    // The kernel reclaims what it can and answers EBUSY if usage still exceeds the new limit.
    const busy = (usageFile: string) => (code: string | undefined) => {
      if (code === 'EBUSY') throw memoryLimitBelowUsage(bytes, Number(readCgroupFile(join(this.#dirs.memory, usageFile)).trim()));
    };
    // memsw must stay >= limit: raise memsw first when growing, lower it last when shrinking.
    if (!existsSync(memsw)) return writeCgroupFile(limit, String(bytes), busy('memory.usage_in_bytes'));
    if (bytes >= this.memoryLimit()) {
      writeCgroupFile(memsw, String(bytes), busy('memory.memsw.usage_in_bytes'));
      writeCgroupFile(limit, String(bytes), busy('memory.usage_in_bytes'));
    } else {
      writeCgroupFile(limit, String(bytes), busy('memory.usage_in_bytes'));
      writeCgroupFile(memsw, String(bytes), busy('memory.memsw.usage_in_bytes'));
    }
  }

  memoryLimit(): number {
    return Number(readCgroupFile(join(this.#dirs.memory, 'memory.limit_in_bytes')).trim());
  }

  setCpuShares(shares: number): void {
    writeCgroupFile(join(this.#dirs.cpu, 'cpu.shares'), String(shares));
  }

  cpuShares(): number {
    return Number(readCgroupFile(join(this.#dirs.cpu, 'cpu.shares')).trim());
  }

  setPidsLimit(max: number): void {
    writeCgroupFile(join(this.#dirs.pids, 'pids.max'), String(max));
  }

  blockForks(): () => void {
    const file = join(this.#dirs.pids, 'pids.max');
    const saved = readCgroupFile(file).trim();
    writeCgroupFile(file, '0');
    return () => writeCgroupFile(file, saved);
  }

  oomKills(): number {
    return parseFlatKeyed(readCgroupFile(join(this.#dirs.memory, 'memory.oom_control'))).get('oom_kill') ?? 0;
  }

  memoryStat(): MemoryStat {
    return memoryStatFromV1(readCgroupFile(join(this.#dirs.memory, 'memory.stat')));
  }

  /** usage in ns (cpuacct.usage); user and system in USER_HZ ticks, as cpuacct.stat has them. */
  cpuStat(): CpuStat {
    const usage = Number(readCgroupFile(join(this.#dirs.cpuacct, 'cpuacct.usage')).trim());
    const stat = parseFlatKeyed(readCgroupFile(join(this.#dirs.cpuacct, 'cpuacct.stat')));
    return { usage, user: stat.get('user') ?? 0, system: stat.get('system') ?? 0 };
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const f of this.procsFiles) for (const p of readPids(f)) all.add(p);
    return [...all];
  }

  exitedTasks(): number {
    const current = Number(readCgroupFile(join(this.#dirs.pids, 'pids.current')).trim());
    return Math.max(0, current - readPids(join(this.#dirs.pids, 'tasks')).length);
  }

  remove(): void {
    for (const f of this.procsFiles) rmdirCgroup(f.slice(0, -'/cgroup.procs'.length));
  }
}
