import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS } from '../../../container-host/warden/linux/gardener.ts';
import { hostMountsMentioning, job, skipReason, sleepMs, startWarden, waitFor, type Harness } from './helpers.ts';

const noJava = spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0 ? undefined : 'the host has no working java';
if (!skipReason && noJava) console.warn(`[warden/linux] skipping the JDK-in-a-container test: ${noJava}`);

describe.skipIf(skipReason)('warden linux backend: lifecycle', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startWarden('lifecycle');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('creates, lists, describes and destroys a container, leaving nothing behind', async () => {
    const { warden } = h;
    const { handle } = await warden.create({ bindMounts: [] });
    expect(await warden.list()).toContain(handle);
    const info = await warden.info(handle);
    expect(info.state).toBe('active');
    expect(info.events).toEqual([]);
    expect(info.containerPath).toBe(join(h.dir, 'depot', handle));
    expect(info.jobIds).toEqual([]);
    expect(info.memoryStat).toBeDefined();
    expect(Object.keys(info.memoryStat!)).toHaveLength(28);
    expect(info.cpuStat?.usage).toBeGreaterThanOrEqual(0);
    expect(existsSync(info.containerPath)).toBe(true);
    expect(warden.leftoverCgroups()).toContain(handle);

    await warden.destroy(handle);
    expect(await warden.list()).not.toContain(handle);
    expect(existsSync(info.containerPath)).toBe(false);
    expect(warden.leftoverCgroups()).not.toContain(handle);
    expect(hostMountsMentioning(h.dir)).toBe(0);
    await expect(warden.info(handle)).rejects.toThrow(/^unknown handle$/);
    await expect(warden.destroy(handle)).rejects.toThrow(/^unknown handle$/);
  });

  it('uses the requested handle and refuses a duplicate with the original message', async () => {
    const { warden } = h;
    await warden.create({ handle: 'dup-handle', bindMounts: [] });
    await expect(warden.create({ handle: 'dup-handle', bindMounts: [] })).rejects.toThrow('container with handle: dup-handle already exists.');
    await warden.destroy('dup-handle');
  });

  it('answers unknown handle for every per-container request', async () => {
    const { warden } = h;
    const calls: Array<() => Promise<unknown>> = [
      () => warden.stop('nope', { background: false, kill: false }),
      () => warden.spawn(job('nope', 'true')),
      () => warden.link('nope', 1),
      () => warden.run(job('nope', 'true')),
      () => warden.copyIn('nope', '/tmp', '/tmp'),
      () => warden.copyOut('nope', '/tmp', '/tmp'),
      () => warden.limitMemory('nope'),
      () => warden.limitCpu('nope'),
      () => warden.limitDisk('nope', {}),
      () => warden.limitBandwidth('nope'),
      () => warden.netIn({ handle: 'nope' }),
      () => warden.netOut({ handle: 'nope' }),
    ];
    for (const call of calls) await expect(call()).rejects.toThrow(/^unknown handle$/);
  });

  it('binds host directories read-only and read-write', async () => {
    const { warden } = h;
    const ro = join(h.dir, 'ro');
    const rw = join(h.dir, 'rw');
    mkdirSync(ro);
    mkdirSync(rw);
    writeFileSync(join(ro, 'hello'), 'from host\n');
    const { handle } = await warden.create({
      bindMounts: [
        { srcPath: ro, dstPath: '/mnt/ro', mode: 'ro' },
        { srcPath: rw, dstPath: '/mnt/rw', mode: 'rw' },
      ],
    });
    const r = await warden.run(job(handle, 'cat /mnt/ro/hello; echo x > /mnt/ro/new; echo "ro=$?"; echo written > /mnt/rw/out', { privileged: true }));
    expect(r.stdout.toString()).toContain('from host');
    expect(r.stdout.toString()).toContain('ro=1');
    expect(readFileSync(join(rw, 'out'), 'utf8')).toBe('written\n');
    expect(existsSync(join(ro, 'new'))).toBe(false);
    await warden.destroy(handle);
    await expect(warden.create({ bindMounts: [{ srcPath: join(h.dir, 'missing'), dstPath: '/x', mode: 'ro' }] })).rejects.toThrow(/bind mount source does not exist/);
  });

  it('creates from another base rootfs', async () => {
    const { warden } = h;
    // A tiny base of our own (host /usr bound in by the request), marked so we can tell it apart.
    const base = join(h.dir, 'custom-base');
    for (const d of ['etc', 'usr', 'proc', 'sys', 'dev', 'tmp', 'home']) mkdirSync(join(base, d), { recursive: true });
    for (const l of ['bin', 'lib', 'lib64', 'sbin']) {
      if (existsSync(`/usr/${l}`)) symlinkSync(`usr/${l}`, join(base, l));
    }
    writeFileSync(join(base, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    writeFileSync(join(base, 'etc/group'), 'root:x:0:\n');
    writeFileSync(join(base, 'etc/marker'), 'custom rootfs\n');
    const { handle } = await warden.create({ rootfs: base, bindMounts: [{ srcPath: '/usr', dstPath: '/usr', mode: 'ro' }] });
    const r = await warden.run(job(handle, 'cat /etc/marker; whoami'));
    expect(r.stdout.toString()).toBe('custom rootfs\nvcap\n');
    await warden.destroy(handle);
    await expect(warden.create({ rootfs: join(h.dir, 'no-such-rootfs'), bindMounts: [] })).rejects.toThrow(/cannot use rootfs/);
  });

  it.skipIf(noJava)("runs the host's JDK in the default base: its /etc/java-* (java.security, jvm.cfg) bound read-only", async () => {
    const { warden } = h;
    const { handle } = await warden.create({ bindMounts: [] });
    const r = await warden.run(
      job(
        handle,
        [
          'java -version',
          'home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")',
          // Debian links these into /etc/java-<N>-openjdk; elsewhere they are plain files
          'test -r "$home/conf/security/java.security" && echo security-readable',
        ].join('\n'),
      ),
    );
    expect(r.stderr.toString()).toMatch(/version "/);
    expect(r.exitStatus).toBe(0);
    expect(r.stdout.toString()).toBe('security-readable\n');
    const rw = await warden.run(job(handle, 'for d in /etc/java-*; do [ -d "$d" ] && touch "$d/x" 2>/dev/null && echo "$d writable"; done; true', { privileged: true }));
    expect(rw.stdout.toString()).toBe('');
    await warden.destroy(handle);
  });

  it('stops with SIGTERM, refuses new jobs when stopped, and still allows copy_out and destroy', async () => {
    const { warden } = h;
    const { handle } = await warden.create({ bindMounts: [] });
    const { jobId } = await warden.spawn(job(handle, 'trap "echo term; exit 7" TERM; echo started; while :; do sleep 0.05; done'));
    await waitFor(async () => (await warden.run(job(handle, 'pgrep -c -f "sleep 0.05" || true'))).stdout.toString().trim() !== '0');
    await warden.stop(handle, { background: false, kill: false });
    const linked = await warden.link(handle, jobId);
    expect(linked.exitStatus).toBe(7);
    expect(linked.stdout.toString()).toBe('started\nterm\n');
    expect(linked.info.state).toBe('stopped');
    await expect(warden.spawn(job(handle, 'true'))).rejects.toThrow("Container state must be one of 'active', current state is 'stopped'");
    await warden.destroy(handle);
  });

  it('stops with SIGKILL after the grace, at once with kill, and in the background', async () => {
    const { warden } = h;
    const { handle } = await warden.create({ bindMounts: [] });
    // Each job says when it gets the TERM it ignores, once it is ready for it: the grace shows as
    // a TERM before the SIGKILL (status 137), kill as a SIGKILL with no TERM before it.
    const stubbornJob = (h: string) => warden.spawn(job(h, 'trap "echo TERM" TERM; echo ready; while :; do sleep 0.05; done'));
    const ready = async (h: string, jobId: number) => {
      for await (const chunk of warden.stream(h, jobId)) if ('data' in chunk) return;
    };
    const stubborn = await stubbornJob(handle);
    await ready(handle, stubborn.jobId);
    await warden.stop(handle, { background: false, kill: false });
    const outcome = async (h: string, jobId: number) => {
      const r = await warden.link(h, jobId);
      return { exitStatus: r.exitStatus, stdout: r.stdout.toString().replace(/^ready\n/, '') };
    };
    expect(await outcome(handle, stubborn.jobId)).toEqual({ exitStatus: 137, stdout: 'TERM\n' });
    await warden.destroy(handle);

    const second = await warden.create({ bindMounts: [] });
    const j = await stubbornJob(second.handle);
    await ready(second.handle, j.jobId);
    await warden.stop(second.handle, { background: false, kill: true });
    expect(await outcome(second.handle, j.jobId)).toEqual({ exitStatus: 137, stdout: '' });
    await warden.destroy(second.handle);

    const third = await warden.create({ bindMounts: [] });
    const k = await stubbornJob(third.handle);
    await ready(third.handle, k.jobId);
    await warden.stop(third.handle, { background: true, kill: false });
    expect((await warden.info(third.handle)).state).toBe('stopped');
    expect(await outcome(third.handle, k.jobId)).toEqual({ exitStatus: 137, stdout: 'TERM\n' });
    await warden.destroy(third.handle);
  });

  it('destroys a container nobody references after its grace time, and not while retained', async () => {
    const { warden } = h;
    const { handle } = await warden.create({ graceTimeS: 1, bindMounts: [] });
    warden.retain(handle);
    await sleepMs(1300);
    expect(await warden.list()).toContain(handle);
    warden.release(handle);
    await sleepMs(600);
    expect(await warden.list()).toContain(handle);
    await waitFor(async () => !(await warden.list()).includes(handle) && !warden.leftoverCgroups().includes(handle), 3000);
  });

  it('keeps a container whose grace time is longer than a timer can hold (2^31-1 ms)', async () => {
    const { warden } = h;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const { handle } = await warden.create({ graceTimeS: 30 * 86_400, bindMounts: [] });
      warden.retain(handle);
      warden.release(handle);
      await sleepMs(1000);
      expect(await warden.list()).toContain(handle);
      expect(warnings).not.toContain('TimeoutOverflowWarning');
      await warden.destroy(handle);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('destroys after a long grace time, re-arming the timer in steps', async () => {
    const { warden } = h;
    const graceMs = 40 * 86_400_000; // 40 days: one full step, then the rest
    const { handle } = await warden.create({ graceTimeS: graceMs / 1000, bindMounts: [] });
    warden.retain(handle); // clears create's (real) timer
    // Everything below is synchronous: no other code runs while the clock is fake.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const destroy = vi.spyOn(warden, 'destroy').mockResolvedValue();
    try {
      warden.release(handle);
      vi.advanceTimersByTime(MAX_TIMER_MS);
      expect(destroy).not.toHaveBeenCalled();
      expect(vi.getTimerCount()).toBe(1); // re-armed for the rest
      vi.advanceTimersByTime(graceMs - MAX_TIMER_MS - 1);
      expect(destroy).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(destroy).toHaveBeenCalledWith(handle);
    } finally {
      destroy.mockRestore();
      vi.useRealTimers();
    }
    await warden.destroy(handle);
  });

  it('after a restart, counts a long grace time from idleSince', async () => {
    const day = 86_400_000;
    const grace = 60 * day;
    await h.warden.create({ handle: 'idle-10-days', graceTimeS: grace / 1000, bindMounts: [] });
    await h.warden.create({ handle: 'idle-61-days', graceTimeS: grace / 1000, bindMounts: [] });
    await h.warden.close();
    for (const [handle, idleMs] of [
      ['idle-10-days', 10 * day],
      ['idle-61-days', 61 * day],
    ] as const) {
      const file = join(h.dir, 'depot', handle, 'container.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), idleSince: Date.now() - idleMs }));
    }
    h.warden = await reopen(h);
    await sleepMs(1000);
    expect(await h.warden.list()).toContain('idle-10-days'); // 50 days left: more than one timer
    await waitFor(async () => !(await h.warden.list()).includes('idle-61-days'), 3000);
    await h.warden.destroy('idle-10-days');
  });

  it('restores live containers from the depot when a new backend starts', async () => {
    const { handle } = await h.warden.create({ handle: 'survivor', bindMounts: [] });
    const { jobId } = await h.warden.spawn(job(handle, 'sleep 0.5; echo done late'));
    await h.warden.close();
    const again = await reopen(h);
    h.warden = again;
    expect(await again.list()).toContain('survivor');
    const r = await again.link(handle, jobId);
    expect(r.exitStatus).toBe(0);
    expect(r.stdout.toString()).toBe('done late\n');
    await again.destroy(handle);
  });
});

/** A new backend on the harness's depot, as a restarted wardend would be. */
async function reopen(h: Harness) {
  const { createLinuxWardenService } = await import('../../../container-host/warden/linux/index.ts');
  return createLinuxWardenService({
    depotDir: join(h.dir, 'depot'),
    rootfsDir: join(h.dir, 'rootfs'),
    cgroupParent: h.cgroupParent,
    stopTimeoutMs: 2000,
    network: false,
    disk: false,
  });
}
