/**
 * The gardener's lifecycle rules (DESIGN §5, §10) on in-memory fakes of every part: no root,
 * nothing on the host. The same rules on the real parts: test/warden/linux/.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OUT_OF_MEMORY, OUTPUT_EXCEEDED } from '../../../contracts/warden-events.ts';
import { MAX_TIMER_MS } from '../../../container-host/warden/linux/gardener.ts';
import { WardenError } from '../../../container-host/warden/server/service.ts';
import { FakeCgroup, fakeGardener, FakeHost, jobOf } from './fakes.ts';

const spawnSpec = (handle: string) => ({ handle, script: 'true', privileged: false, discardOutput: false });

/** A started gardener on fakes, with one container. */
async function withContainer() {
  const { gardener, host } = fakeGardener();
  await gardener.start();
  const { handle } = await gardener.create({ bindMounts: [] });
  return { gardener, host, handle };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the gardener on fakes', () => {
  it('keeps a container for a grace time past 2^31 ms: the timer re-arms instead of firing at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { gardener } = fakeGardener();
    await gardener.start();
    const graceTimeS = 30 * 24 * 3600; // 30 days: over MAX_TIMER_MS (~24.8 days)
    const graceMs = graceTimeS * 1000;
    expect(graceMs).toBeGreaterThan(MAX_TIMER_MS);
    const { handle } = await gardener.create({ bindMounts: [], graceTimeS });

    await vi.advanceTimersByTimeAsync(10);
    expect(await gardener.list()).toEqual([handle]);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(await gardener.list()).toEqual([handle]);
    await vi.advanceTimersByTimeAsync(graceMs - MAX_TIMER_MS - 10 - 5);
    expect(await gardener.list()).toEqual([handle]);
    await vi.advanceTimersByTimeAsync(10);
    expect(await gardener.list()).toEqual([]);
    await gardener.close();
  });

  it('stops a container whose cgroup saw an OOM kill, with the event "out of memory"', async () => {
    const { gardener, host, handle } = await withContainer();
    const { jobId } = await gardener.spawn(spawnSpec(handle));
    host.cgroups.get(handle)!.ooms = 1;
    await jobOf(host, handle, jobId).finish(137);

    const linked = await gardener.link(handle, jobId);
    expect(linked.exitStatus).toBe(137);
    expect(linked.info).toMatchObject({ state: 'stopped', events: [OUT_OF_MEMORY] });
    expect(host.stops).toEqual([{ initPid: host.records.get(handle)!.initPid, kill: true }]);
    // Durable: the depot record says so too.
    expect(host.records.get(handle)).toMatchObject({ state: 'stopped', events: [OUT_OF_MEMORY] });
    await expect(gardener.spawn(spawnSpec(handle))).rejects.toMatchObject({ code: 'bad_state' });
    await gardener.close();
  });

  it('adds the output cap event when job.sh reports output_exceeded, once, and the container stays active', async () => {
    const { gardener, host, handle } = await withContainer();
    for (let i = 0; i < 2; i++) {
      const { jobId } = await gardener.spawn(spawnSpec(handle));
      const job = jobOf(host, handle, jobId);
      job.write('stdout', 'x'.repeat(10));
      job.exceeded = true;
      await job.finish(137);
      const linked = await gardener.link(handle, jobId);
      expect(linked).toMatchObject({ exitStatus: 137, stdout: Buffer.from('x'.repeat(10)) });
      expect(linked.info).toMatchObject({ state: 'active', events: [OUTPUT_EXCEEDED] });
    }
    expect(host.records.get(handle)?.events).toEqual([OUTPUT_EXCEEDED]);
    await gardener.close();
  });

  it('leaves a job whose link was cut short linkable: a later link gets its exit status and output, once', async () => {
    const { gardener, host, handle } = await withContainer();
    const { jobId } = await gardener.spawn(spawnSpec(handle));
    const job = jobOf(host, handle, jobId);

    const abort = new AbortController();
    const first = gardener.link(handle, jobId, abort.signal);
    expect((await gardener.info(handle)).jobIds).toEqual([]); // taken while linked
    abort.abort();
    await expect(first).rejects.toThrow('link cut short');
    expect((await gardener.info(handle)).jobIds).toEqual([jobId]);

    job.write('stdout', 'out');
    job.write('stderr', 'err');
    await job.finish(3);
    expect(await gardener.link(handle, jobId)).toMatchObject({ exitStatus: 3, stdout: Buffer.from('out'), stderr: Buffer.from('err') });
    await expect(gardener.link(handle, jobId)).rejects.toEqual(new WardenError('no_such_job', 'no such job'));
    expect(host.jobs.size).toBe(0); // consumed: its directory is gone
    await gardener.close();
  });

  it('restores on start from the depot: live containers with their jobs, uids and unread output; dead ones cleaned up', async () => {
    const host = new FakeHost();
    const before = fakeGardener(host);
    await before.gardener.start();
    const kept = (await before.gardener.create({ bindMounts: [], handle: 'kept' })).handle;
    const dead = (await before.gardener.create({ bindMounts: [], handle: 'dead' })).handle;
    const { jobId } = await before.gardener.spawn(spawnSpec(kept));
    const job = jobOf(host, kept, jobId);
    job.write('stdout', 'already sent|not yet');
    await job.markConsumed({ stdout: 'already sent|'.length, stderr: 0 }); // a stream got this far
    const uidKept = host.records.get(kept)!.uid;
    await before.gardener.close();

    // The daemon is gone; one container's init died meanwhile, and a cgroup lost its depot dir.
    host.inits.delete(host.records.get(dead)!.initPid!);
    host.cgroups.set('orphan', new FakeCgroup());

    const after = fakeGardener(host);
    await after.gardener.start();
    expect(await after.gardener.list()).toEqual([kept]);
    expect(host.records.has(dead)).toBe(false);
    expect([...host.cgroups.keys()]).toEqual([kept]);
    expect((await after.gardener.info(kept)).jobIds).toEqual([jobId]);
    // Job ids go on after the highest, new uids after the newest container's.
    const next = await after.gardener.spawn(spawnSpec(kept));
    expect(next.jobId).toBe(jobId + 1);
    const fresh = (await after.gardener.create({ bindMounts: [] })).handle;
    expect(host.records.get(fresh)!.uid).toBeGreaterThan(uidKept);

    await job.finish(0);
    expect(await after.gardener.link(kept, jobId)).toMatchObject({ exitStatus: 0, stdout: Buffer.from('not yet') });
    await after.gardener.close();
  });
});
