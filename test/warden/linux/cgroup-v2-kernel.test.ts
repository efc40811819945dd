/**
 * The cgroup v2 backend against a real kernel (cgroup-v2.test.ts covers it over a fake tree).
 * Only runs with DROPWARDEN_EXPECT_CGROUP2=1 (vitest.config.ts leaves it out otherwise), as
 * `npm run test:vm` sets it inside its cgroup2-only guest: there every check FAILS, never skips,
 * when the host is not cgroup v2 only or cannot run the real backend.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFlatKeyed } from '../../../container-host/warden/linux/cgroups/memory-stat.ts';
import { sharesToWeight } from '../../../container-host/warden/linux/cgroups/v2.ts';
import { WardendProcess, alive } from '../integration/wardend.ts';
import { containerPids, job, missingHostFeature, processesOf, sleepMs, startWarden, waitFor, type Harness } from './helpers.ts';

const ROOT = '/sys/fs/cgroup';
const MB = 1024 * 1024;
const CYCLES = Number(process.env.DROPWARDEN_V2_CYCLES ?? 200);

/** Why this host is not what these tests are for, or undefined. */
function notCgroup2Only(): string | undefined {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' - '));
  const v1 = mounts.filter(([, post]) => post?.startsWith('cgroup ')).map(([pre]) => pre.split(' ')[4]);
  if (v1.length) return `cgroup v1 hierarchies are mounted (${v1.join(', ')})`;
  const v2 = mounts.some(([pre, post]) => post?.startsWith('cgroup2 ') && pre.split(' ')[4] === ROOT);
  if (!v2) return `no cgroup2 mount at ${ROOT}`;
  return missingHostFeature();
}

function kv(file: string): Map<string, number> {
  return parseFlatKeyed(readFileSync(file, 'utf8'));
}

function read(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

describe('cgroup v2 on a real kernel', () => {
  let h: Harness;
  let parent: string;
  const cg = (handle: string, file = ''): string => join(parent, handle, file);

  beforeAll(async () => {
    const why = notCgroup2Only();
    // DROPWARDEN_EXPECT_CGROUP2=1 says this must be a cgroup2-only host: fail, never skip.
    if (why) throw new Error(`DROPWARDEN_EXPECT_CGROUP2=1 but this host cannot run the v2 checks: ${why}`);
    h = await startWarden('cgv2', { pidsLimit: 64, cgroupRoot: ROOT });
    parent = join(ROOT, h.cgroupParent);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('uses the v2 driver: one cgroup per container below the parent, with memory, cpu and pids delegated', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    expect(existsSync(cg(handle, 'cgroup.procs'))).toBe(true);
    expect(read(join(parent, 'cgroup.subtree_control')).split(' ')).toEqual(expect.arrayContaining(['memory', 'cpu', 'pids']));
    expect(read(cg(handle, 'memory.swap.max'))).toBe('0');
    expect(read(cg(handle, 'pids.max'))).toBe('64');
    // The container's processes are in its cgroup, and only there (one v2 line, no v1 ones).
    const r = await h.warden.run(job(handle, 'cat /proc/self/cgroup'));
    expect(r.stdout.toString()).toBe(`0::/${h.cgroupParent}/${handle}\n`);
    await h.warden.destroy(handle);
  });

  it('enforces memory.max: the hog is OOM-killed, memory.events counts it, info says "out of memory"', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    expect((await h.warden.limitMemory(handle, 64 * MB)).limitInBytes).toBe(64 * MB);
    expect(read(cg(handle, 'memory.max'))).toBe(String(64 * MB));
    const r = await h.warden.run(job(handle, 'x=a; while :; do x="$x$x"; done'));
    expect(r.exitStatus).toBe(137);
    expect(r.info.events).toContain('out of memory');
    expect(r.info.state).toBe('stopped');
    expect(kv(cg(handle, 'memory.events')).get('oom_kill')).toBeGreaterThanOrEqual(1);
    // It never got past the limit (memory.peak is the high-water mark, 5.19 and later).
    if (existsSync(cg(handle, 'memory.peak'))) expect(Number(read(cg(handle, 'memory.peak')))).toBeLessThanOrEqual(64 * MB);
    await h.warden.destroy(handle);
  });

  it('stops a fork bomb at pids.max, and the container still stops', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const { jobId } = await h.warden.spawn(job(handle, 'f() { f | f & }; f'));
    await waitFor(async () => (kv(cg(handle, 'pids.events')).get('max') ?? 0) > 0, 30_000);
    expect(Number(read(cg(handle, 'pids.current')))).toBeLessThanOrEqual(64);
    // Stop answers (the test's timeout is the hang guard; how fast is no unit test's business).
    await h.warden.stop(handle, { background: false, kill: true });
    // Stop answered once the killed processes were reaped: none still holds a pid.
    const threads = read(cg(handle, 'cgroup.threads')).split('\n').filter(Boolean);
    expect(Number(read(cg(handle, 'pids.current')))).toBe(threads.length);
    // And none of the bomb's processes is left: in the container, only init and the keeper it
    // spares (the job's supervisor, on the host's side, may still be writing its exit status).
    expect(containerPids(threads)).toHaveLength(2);
    await h.warden.link(handle, jobId);
    await h.warden.destroy(handle);
    expect(existsSync(cg(handle))).toBe(false);
  });

  it('applies cpu weight: cpu.weight is written, and the heavier container gets more of a contended cpu', async () => {
    const heavy = (await h.warden.create({ bindMounts: [] })).handle;
    const light = (await h.warden.create({ bindMounts: [] })).handle;
    await h.warden.limitCpu(heavy, 262144);
    await h.warden.limitCpu(light, 2);
    expect(read(cg(heavy, 'cpu.weight'))).toBe(String(sharesToWeight(262144)));
    expect(read(cg(light, 'cpu.weight'))).toBe('1');
    // Both spin on cpu 0 for a while; weight 10000 against 1 should leave the light one crumbs.
    const spin = 'exec taskset -c 0 sh -c "while :; do :; done"';
    const jobs = await Promise.all([heavy, light].map(async (handle) => ({ handle, ...(await h.warden.spawn(job(handle, spin))) })));
    const usage = (handle: string): number => kv(cg(handle, 'cpu.stat')).get('usage_usec')!;
    await sleepMs(1000);
    const before = [usage(heavy), usage(light)];
    await sleepMs(3000);
    const used = [usage(heavy) - before[0], usage(light) - before[1]];
    console.log(`[cgroup-v2] 3 s on one cpu: weight 10000 got ${used[0]} us, weight 1 got ${used[1]} us`);
    expect(used[0]).toBeGreaterThan(1_000_000);
    expect(used[0]).toBeGreaterThan(used[1] * 5);
    for (const { handle, jobId } of jobs) {
      await h.warden.stop(handle, { background: false, kill: true });
      await h.warden.link(handle, jobId);
      await h.warden.destroy(handle);
    }
  });

  it('reports memory_stat and cpu_stat from the v2 files, with real numbers', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await h.warden.limitMemory(handle, 512 * MB);
    // 24 MB of page cache (a file in the container's rootfs), 16 MB of anon memory, a second of cpu.
    const script =
      'dd if=/dev/zero of=/tmp/cache bs=1M count=24 status=none; ' +
      'end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do :; done; ' +
      'exec python3 -c "import time; b = bytearray(16 << 20); b[::4096] = b\\"x\\" * (len(b) // 4096); print(\\"ready\\", flush=True); time.sleep(60)"';
    const { jobId } = await h.warden.spawn(job(handle, script));
    await waitFor(async () => kv(cg(handle, 'memory.stat')).get('anon')! >= 16 * MB, 60_000);
    const file = kv(cg(handle, 'memory.stat'));
    const cpu = kv(cg(handle, 'cpu.stat'));
    const info = await h.warden.info(handle);
    const m = info.memoryStat!;
    console.log(`[cgroup-v2] memory_stat cache=${m.cache} rss=${m.rss} mapped_file=${m.mappedFile} pgfault=${m.pgfault}; cpu_stat ${JSON.stringify(info.cpuStat)}`);
    expect(m.cache).toBeGreaterThanOrEqual(20 * MB);
    expect(m.rss).toBeGreaterThanOrEqual(16 * MB);
    // Read a moment apart from the files, so close to them rather than equal.
    expect(Math.abs(m.cache - file.get('file')!)).toBeLessThan(4 * MB);
    expect(Math.abs(m.rss - file.get('anon')!)).toBeLessThan(4 * MB);
    expect(m.activeAnon + m.inactiveAnon).toBeGreaterThan(0);
    expect(m.activeFile + m.inactiveFile).toBeGreaterThan(0);
    expect(m.pgfault).toBeGreaterThan(1000);
    expect(m.hierarchicalMemoryLimit).toBe(512 * MB);
    expect(m.hierarchicalMemswLimit).toBe(512 * MB); // memory.swap.max is 0
    expect(m.totalCache).toBe(m.cache);
    expect(m.totalRss).toBe(m.rss);
    const c = info.cpuStat!;
    expect(c.usage).toBeGreaterThanOrEqual(1e9); // ns; the loop spun for 2 s
    expect(c.usage).toBeGreaterThanOrEqual(cpu.get('usage_usec')! * 1000);
    expect(c.user + c.system).toBeGreaterThanOrEqual(90); // USER_HZ ticks
    expect(Math.abs(c.user - Math.floor(cpu.get('user_usec')! / 10_000))).toBeLessThanOrEqual(20);
    await h.warden.stop(handle, { background: false, kill: true });
    await h.warden.link(handle, jobId);
    await h.warden.destroy(handle);
  });

  it('removes the cgroup on destroy, even with processes still running in it', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await h.warden.spawn(job(handle, 'sleep 600 & sleep 600'));
    await waitFor(async () => read(cg(handle, 'cgroup.procs')).split('\n').length >= 3, 20_000);
    await h.warden.destroy(handle);
    expect(existsSync(cg(handle))).toBe(false);
    expect(h.warden.leftoverCgroups()).not.toContain(handle);
  });

  it(`${CYCLES} create/destroy cycles leave no cgroup, process or depot dir behind`, async () => {
    const start = Date.now();
    for (let i = 0; i < CYCLES; i += 4) {
      await Promise.all(
        Array.from({ length: Math.min(4, CYCLES - i) }, async () => {
          const { handle } = await h.warden.create({ bindMounts: [] });
          await h.warden.destroy(handle);
        }),
      );
    }
    console.log(`[cgroup-v2] ${CYCLES} create/destroy cycles in ${Date.now() - start} ms`);
    expect(
      readdirSync(parent, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name),
    ).toEqual([]);
    expect(read(join(parent, 'cgroup.procs'))).toBe('');
    expect(await h.warden.list()).toEqual([]);
    expect(readdirSync(join(h.dir, 'depot'))).toEqual([]);
    expect(processesOf(join(h.dir, 'depot'))).toEqual([]);
  }, 600_000);

  it('restores after SIGKILL of wardend: the container, its limits and its cgroup survive; destroy removes it', async () => {
    const d = new WardendProcess('cgv2-restart', { cgroupRoot: ROOT });
    try {
      await d.start();
      let c = await d.client();
      const handle = (await c.call('Create', { handle: Buffer.from('v2-keep') })).handle!;
      await c.call('LimitMemory', { handle, limit_in_bytes: 128 * MB });
      const running = await c.call('Spawn', { handle, script: 'sleep 600' });
      const dir = join(ROOT, d.cgroupParent, 'v2-keep');
      await waitFor(async () => read(join(dir, 'cgroup.procs')).split('\n').length >= 2, 20_000);
      const procs = read(join(dir, 'cgroup.procs'));

      expect(await d.stop('SIGKILL')).toBe('SIGKILL');
      // The kernel keeps the cgroup and its processes; nothing of wardend's is in there.
      expect(read(join(dir, 'cgroup.procs'))).toBe(procs);
      for (const pid of procs.split('\n')) expect(alive(Number(pid))).toBe(true);

      await d.start();
      c = await d.client();
      expect(((await c.call('List', {})).handles ?? []).map((b) => b.toString())).toEqual(['v2-keep']);
      const info = await c.call('Info', { handle });
      expect(info.state).toBe('active');
      expect(info.job_ids).toContain(running.job_id);
      expect(info.memory_stat?.hierarchical_memory_limit).toBe(128 * MB);
      expect(Number(read(join(dir, 'memory.max')))).toBe(128 * MB);
      // Its processes are still the ones in there (wardend may have added helpers of its own).
      expect(read(join(dir, 'cgroup.procs')).split('\n')).toEqual(expect.arrayContaining(procs.split('\n')));
      const r = await c.call('Run', { handle, script: 'echo still here' });
      expect(r.stdout!.toString()).toBe('still here\n');

      await c.call('Destroy', { handle });
      expect(existsSync(dir)).toBe(false);
      // Gone once reaped (the processes' parent on the host is whatever pid 1 is).
      await waitFor(async () => procs.split('\n').every((pid) => !alive(Number(pid))), 10_000);
    } finally {
      await d.cleanup();
    }
  });
});
