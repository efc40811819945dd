import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../../container-host/warden/linux/cgroups/detect.ts';
import { UNLIMITED } from '../../../container-host/warden/linux/cgroups/types.ts';
import { CgroupV2Driver, sharesToWeight, weightToShares } from '../../../container-host/warden/linux/cgroups/v2.ts';
import { findV1Mounts } from '../../../container-host/warden/linux/cgroups/v1.ts';

/**
 * cgroup v2 (Amazon Linux 2023) against a fake cgroup2 file tree: the kernel's files become
 * plain files, so this checks what we write and how we read, not the kernel's enforcement.
 */
describe('cgroup v2 driver over a fake cgroup2 tree', () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function fakeRoot(controllers = 'cpuset cpu io memory hugetlb pids rdma misc'): string {
    root = mkdtempSync(join(tmpdir(), 'dw-cgv2-'));
    writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
    writeFileSync(join(root, 'cgroup.subtree_control'), 'memory\n');
    return root;
  }

  it('enables memory, cpu and pids for its parent and creates one cgroup per container', () => {
    const driver = detectCgroups(fakeRoot(), 'dropwarden', 2);
    expect(driver.version).toBe(2);
    const cg = driver.create('h1');
    // A fake file only keeps the last write; the kernel would have accumulated them.
    expect(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8')).toBe('+cpu +pids');
    expect(readFileSync(join(root, 'dropwarden/cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu +pids');
    expect(cg.procsFiles).toEqual([join(root, 'dropwarden/h1/cgroup.procs')]);
    expect(driver.list()).toEqual(['h1']);
  });

  it('writes memory.max, cpu.weight and pids.max, and reads them back', () => {
    const cg = new CgroupV2Driver(fakeRoot(), 'dropwarden').create('h2');
    const dir = join(root, 'dropwarden/h2');
    writeFileSync(join(dir, 'memory.current'), '4096\n');
    cg.setMemoryLimit(64 * 1024 * 1024);
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
    expect(cg.memoryLimit()).toBe(64 * 1024 * 1024);
    writeFileSync(join(dir, 'memory.max'), 'max\n');
    expect(cg.memoryLimit()).toBe(UNLIMITED);
    cg.setCpuShares(1024);
    expect(readFileSync(join(dir, 'cpu.weight'), 'utf8')).toBe(String(sharesToWeight(1024)));
    cg.setPidsLimit(512);
    expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('512');
    const restore = cg.blockForks();
    expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('0');
    restore();
    expect(readFileSync(join(dir, 'pids.max'), 'utf8')).toBe('512');
  });

  it('refuses a memory limit below the usage it cannot reclaim, saying what to do, and leaves memory.max alone', () => {
    const cg = new CgroupV2Driver(fakeRoot(), 'dropwarden').create('h4');
    const dir = join(root, 'dropwarden/h4');
    writeFileSync(join(dir, 'memory.max'), 'max\n');
    writeFileSync(join(dir, 'memory.current'), '5000000\n');
    writeFileSync(join(dir, 'memory.reclaim'), '');
    expect(() => cg.setMemoryLimit(1048576)).toThrow(
      "memory limit 1048576 is below the container's current usage of 5000000 bytes, and the kernel could not reclaim enough to fit; " +
        "stop some of the container's processes (or free their memory) and try again, or set a limit of at least 5000000 bytes",
    );
    // it asked the kernel to reclaim the difference first
    expect(readFileSync(join(dir, 'memory.reclaim'), 'utf8')).toBe(String(5000000 - 1048576));
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe('max\n');
    // once usage fits (the kernel reclaimed enough), the limit is written
    writeFileSync(join(dir, 'memory.current'), '1000000\n');
    cg.setMemoryLimit(1048576);
    expect(readFileSync(join(dir, 'memory.max'), 'utf8')).toBe('1048576');
  });

  it('converts shares to weight and back (2→1, 1024→39, 262144→10000)', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(weightToShares(1)).toBe(2);
    expect(weightToShares(10000)).toBe(262144);
    expect(sharesToWeight(weightToShares(100))).toBe(100);
  });

  it('reads OOM kills from memory.events and stats in v1 shape', () => {
    const cg = new CgroupV2Driver(fakeRoot(), 'dropwarden').create('h3');
    const dir = join(root, 'dropwarden/h3');
    writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n');
    expect(cg.oomKills()).toBe(1);
    writeFileSync(join(dir, 'memory.max'), '1048576\n');
    writeFileSync(join(dir, 'memory.swap.current'), '0\n');
    writeFileSync(
      join(dir, 'memory.stat'),
      'anon 4096\nfile 8192\nfile_mapped 1024\npgfault 10\npgmajfault 1\ninactive_anon 1\nactive_anon 2\ninactive_file 3\nactive_file 4\nunevictable 5\n',
    );
    const stat = cg.memoryStat();
    expect(stat).toMatchObject({
      rss: 4096,
      cache: 8192,
      mappedFile: 1024,
      pgfault: 10,
      pgmajfault: 1,
      inactiveAnon: 1,
      activeAnon: 2,
      inactiveFile: 3,
      activeFile: 4,
      unevictable: 5,
      hierarchicalMemoryLimit: 1048576,
      hierarchicalMemswLimit: 1048576,
    });
    expect(stat.totalRss).toBe(4096);
    expect(stat.totalCache).toBe(8192);
    expect(Object.keys(stat)).toHaveLength(28);
    writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n');
    expect(cg.cpuStat()).toEqual({ usage: 2_500_000_000, user: 200, system: 50 });
    writeFileSync(join(dir, 'cgroup.procs'), '12\n34\n');
    expect(cg.pids()).toEqual([12, 34]);
  });

  it('refuses a v2 hierarchy without the memory controller, with a message saying so', () => {
    expect(() => new CgroupV2Driver(fakeRoot('cpu io pids'), 'dropwarden')).toThrow(/lacks controllers: memory/);
  });

  it('finds v1 controllers in mountinfo, co-mounted or not', () => {
    const mountinfo = [
      '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
      '31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory',
      '32 25 0:28 / /sys/fs/cgroup/pids rw,relatime shared:11 - cgroup cgroup rw,pids',
      '33 25 0:29 / /sys/fs/cgroup/unified rw,relatime shared:12 - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(findV1Mounts(mountinfo)).toEqual({
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      memory: '/sys/fs/cgroup/memory',
      pids: '/sys/fs/cgroup/pids',
    });
    mkdirSync(join(tmpdir(), 'unused'), { recursive: true });
    root = join(tmpdir(), 'unused');
  });
});
