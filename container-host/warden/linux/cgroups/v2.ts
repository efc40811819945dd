import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { MemoryStat } from '../../server/service.ts';
import { HostRequirementError } from '../errors.ts';
import { listDirs, memoryLimitBelowUsage, mkdirCgroup, readCgroupFile, readPids, removeQuietly, rmdirCgroup, writeCgroupFile } from './files.ts';
import { parseFlatKeyed, V1_MEMORY_STAT_KEYS } from './memory-stat.ts';
import { UNLIMITED, type CgroupDriver, type ContainerCgroup, type CpuStat } from './types.ts';

const CONTROLLERS = ['memory', 'cpu', 'pids'];
/** USER_HZ on every Linux ABI we run on; v1's cpuacct.stat reports ticks of it. */
const USER_HZ = 100;

/** v1 cpu.shares [2, 262144] onto v2 cpu.weight [1, 10000], linearly (as runc and systemd do). */
export function sharesToWeight(shares: number): number {
  const s = Math.min(262144, Math.max(2, shares));
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

export function weightToShares(weight: number): number {
  const w = Math.min(10000, Math.max(1, weight));
  return 2 + Math.ceil(((w - 1) * 262142) / 9999);
}

function parseMax(text: string): number {
  const t = text.trim();
  return t === 'max' ? UNLIMITED : Number(t);
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly #root: string;
  readonly #parent: string;
  #parentReady = false;

  constructor(root: string, parent: string) {
    const available = readCgroupFile(join(root, 'cgroup.controllers')).split(/\s+/);
    const missing = CONTROLLERS.filter((c) => !available.includes(c));
    if (missing.length) throw new HostRequirementError(`cgroup v2 at ${root} lacks controllers: ${missing.join(', ')}`);
    this.#root = root;
    this.#parent = join(root, parent);
  }

  /** Children of a v2 cgroup only get the controllers its subtree_control enables. */
  #prepareParent(): void {
    if (this.#parentReady) return;
    mkdirCgroup(this.#parent);
    for (const dir of [this.#root, this.#parent]) {
      const enabled = existsSync(join(dir, 'cgroup.subtree_control')) ? readCgroupFile(join(dir, 'cgroup.subtree_control')).split(/\s+/) : [];
      const wanted = CONTROLLERS.filter((c) => !enabled.includes(c));
      if (wanted.length) writeCgroupFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    }
    this.#parentReady = true;
  }

  create(handle: string): ContainerCgroup {
    this.#prepareParent();
    const dir = join(this.#parent, handle);
    mkdirCgroup(dir);
    const cgroup = new CgroupV2(dir);
    try {
      // Without swap the memory limit is the whole story, as v1's memsw limit makes it there.
      if (existsSync(join(dir, 'memory.swap.max'))) writeCgroupFile(join(dir, 'memory.swap.max'), '0');
    } catch (e) {
      removeQuietly(cgroup); // the caller never gets it, so nothing else would
      throw e;
    }
    return cgroup;
  }

  open(handle: string): ContainerCgroup {
    return new CgroupV2(join(this.#parent, handle));
  }

  list(): string[] {
    return listDirs(this.#parent);
  }
}

class CgroupV2 implements ContainerCgroup {
  readonly #dir: string;
  readonly procsFiles: string[];

  constructor(dir: string) {
    this.#dir = dir;
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  #file(name: string): string {
    return join(this.#dir, name);
  }

  /**
   * v2 takes any memory.max and OOM-kills what it cannot reclaim; v1 refuses a limit below
   * usage (EBUSY). Refused here too: reclaim first (memory.reclaim, where the kernel has it),
   * and leave memory.max alone if usage still does not fit.
   */
  setMemoryLimit(bytes: number): void {
    if (bytes < UNLIMITED) {
      const usage = () => Number(readCgroupFile(this.#file('memory.current')).trim());
      const excess = usage() - bytes;
      if (excess > 0 && existsSync(this.#file('memory.reclaim'))) {
        try {
          writeCgroupFile(this.#file('memory.reclaim'), String(excess));
        } catch {
          // EAGAIN: it reclaimed less than asked; the usage read below says what is left
        }
      }
      const after = usage();
      if (after > bytes) throw memoryLimitBelowUsage(bytes, after);
    }
    writeCgroupFile(this.#file('memory.max'), bytes >= UNLIMITED ? 'max' : String(bytes));
  }

  memoryLimit(): number {
    return parseMax(readCgroupFile(this.#file('memory.max')));
  }

  setCpuShares(shares: number): void {
    writeCgroupFile(this.#file('cpu.weight'), String(sharesToWeight(shares)));
  }

  cpuShares(): number {
    return weightToShares(Number(readCgroupFile(this.#file('cpu.weight')).trim()));
  }

  setPidsLimit(max: number): void {
    writeCgroupFile(this.#file('pids.max'), String(max));
  }

  blockForks(): () => void {
    const file = this.#file('pids.max');
    const saved = readCgroupFile(file).trim();
    writeCgroupFile(file, '0');
    return () => writeCgroupFile(file, saved);
  }

  oomKills(): number {
    return parseFlatKeyed(readCgroupFile(this.#file('memory.events'))).get('oom_kill') ?? 0;
  }

  /** v2's memory.stat in v1's shape; v2 is hierarchical, so total_* equal their own values. */
  memoryStat(): MemoryStat {
    const kv = parseFlatKeyed(readCgroupFile(this.#file('memory.stat')));
    const swapFile = this.#file('memory.swap.current');
    const swap = existsSync(swapFile) ? Number(readCgroupFile(swapFile).trim()) : 0;
    const limit = this.memoryLimit();
    const swapMaxFile = this.#file('memory.swap.max');
    const swapMax = existsSync(swapMaxFile) ? parseMax(readCgroupFile(swapMaxFile)) : 0;
    const own: Record<string, number> = {
      cache: kv.get('file') ?? 0,
      rss: kv.get('anon') ?? 0,
      mapped_file: kv.get('file_mapped') ?? 0,
      pgpgin: 0,
      pgpgout: 0,
      swap,
      pgfault: kv.get('pgfault') ?? 0,
      pgmajfault: kv.get('pgmajfault') ?? 0,
      inactive_anon: kv.get('inactive_anon') ?? 0,
      active_anon: kv.get('active_anon') ?? 0,
      inactive_file: kv.get('inactive_file') ?? 0,
      active_file: kv.get('active_file') ?? 0,
      unevictable: kv.get('unevictable') ?? 0,
      hierarchical_memory_limit: limit,
      hierarchical_memsw_limit: limit >= UNLIMITED || swapMax >= UNLIMITED ? UNLIMITED : limit + swapMax,
    };
    const stat = {} as MemoryStat;
    for (const [field, key] of V1_MEMORY_STAT_KEYS) stat[field] = own[key.replace(/^total_/, '')] ?? 0;
    return stat;
  }

  /** usage in ns; user and system in USER_HZ ticks, matching what v1 reports. */
  cpuStat(): CpuStat {
    const kv = parseFlatKeyed(readCgroupFile(this.#file('cpu.stat')));
    const ticks = (usec: number): number => Math.floor((usec * USER_HZ) / 1_000_000);
    return {
      usage: (kv.get('usage_usec') ?? 0) * 1000,
      user: ticks(kv.get('user_usec') ?? 0),
      system: ticks(kv.get('system_usec') ?? 0),
    };
  }

  pids(): number[] {
    return readPids(this.procsFiles[0]);
  }

  exitedTasks(): number {
    const current = Number(readCgroupFile(this.#file('pids.current')).trim());
    return Math.max(0, current - readPids(this.#file('cgroup.threads')).length);
  }

  remove(): void {
    rmdirCgroup(this.#dir);
  }
}
