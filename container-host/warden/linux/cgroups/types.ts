import type { MemoryStat } from '../../server/service.ts';

export interface CpuStat {
  usage: number;
  user: number;
  system: number;
}

/** One container's cgroup(s), whichever the version: what the gardener limits and reads. */
export interface ContainerCgroup {
  /** Files a process writes its own pid to, to join the container's cgroup(s). */
  readonly procsFiles: string[];
  setMemoryLimit(bytes: number): void;
  memoryLimit(): number;
  setCpuShares(shares: number): void;
  cpuShares(): number;
  setPidsLimit(max: number): void;
  /** Makes every fork in the cgroup fail until the returned function restores the limit. */
  blockForks(): () => void;
  /** How many processes the kernel's OOM killer has killed in this cgroup so far. */
  oomKills(): number;
  memoryStat(): MemoryStat;
  cpuStat(): CpuStat;
  /** Host pids of every process in the cgroup. */
  pids(): number[];
  /**
   * Tasks that have exited but still count against pids.max, not yet reaped by their parent
   * (pids.current less the threads listed): a stop is over once none is left.
   */
  exitedTasks(): number;
  /** Removes the cgroup(s); fails while a process is still inside. */
  remove(): void;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Makes the container's cgroup(s) (idempotent). */
  create(handle: string): ContainerCgroup;
  /** The cgroup(s) of an existing container, without creating anything. */
  open(handle: string): ContainerCgroup;
  /** Container cgroups that exist below our parent (the leak test counts them). */
  list(): string[];
}

/** cgroup v1 reports "no limit" as this (PAGE_COUNTER_MAX pages in bytes); v2 says "max". */
export const UNLIMITED = 9223372036854771712;
