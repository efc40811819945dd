import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupParentDirs, job, skipReason, startWarden, type Harness } from './helpers.ts';

const CAP = 64 * 1024;

/** The cap is held where the output is written (job.sh), not by a poll that a fast job outruns. */
describe.skipIf(skipReason)('warden linux backend: the output cap', () => {
  let h: Harness;
  beforeAll(async () => {
    // A poll that never comes: only the write side can hold the cap.
    h = await startWarden('outcap', { maxOutputBytes: CAP, pollIntervalMs: 3_600_000 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const jobDir = (handle: string, jobId: number): string => join(h.dir, 'depot', handle, 'jobs', String(jobId));

  it('kills a job that writes past the cap and exits at once: the host file never holds more', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    // 50 MB in one burst, then a clean exit: before, this exited 0 between two polls.
    const { jobId } = await h.warden.spawn(job(handle, 'yes | head -c 50000000; exit 0'));
    const dir = jobDir(handle, jobId);
    // Wait for the end without consuming the job, so that its files can be looked at.
    for (let i = 0; i < 600 && !existsSync(join(dir, 'exit_status')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(join(dir, 'stdout')).size).toBe(CAP);
    const r = await h.warden.link(handle, jobId);
    expect(r.exitStatus).toBe(137);
    expect(r.stdout.length).toBe(CAP);
    expect(r.info.events).toContain('command exceeded maximum output');
  });

  it('holds stderr to the cap as well', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const r = await h.warden.run(job(handle, 'echo before; head -c 1000000 /dev/zero >&2; echo after'));
    expect(r.exitStatus).toBe(137);
    expect(r.stdout.toString()).toBe('before\n');
    expect(r.stderr.length).toBe(CAP);
    expect(r.info.events).toContain('command exceeded maximum output');
  });

  it('output of exactly the cap is whole, with its exit status and no event', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const r = await h.warden.run(job(handle, `head -c ${CAP} /dev/zero; exit 3`));
    expect(r.exitStatus).toBe(3);
    expect(r.stdout.length).toBe(CAP);
    expect(r.info.events).not.toContain('command exceeded maximum output');
  });

  it('a job that ends while forks are blocked (as stop blocks them) still gets its exit status', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    // Its own wait forks nothing either (the pipe it waits on is made before it says so).
    const { jobId } = await h.warden.spawn(job(handle, 'exec 3<> <(:); echo started; read -t 1 -u 3; echo done; exit 4'));
    const out = join(jobDir(handle, jobId), 'stdout');
    for (let i = 0; i < 600 && !(existsSync(out) && readFileSync(out, 'utf8').includes('started')); i++) await new Promise((r) => setTimeout(r, 20));
    const pidsMax = cgroupParentDirs(h.cgroupParent)
      .map((d) => join(d, handle, 'pids.max'))
      .find((f) => existsSync(f))!;
    writeFileSync(pidsMax, '0');
    try {
      // The supervisor forks nothing once the job has ended: it writes the status all the same.
      const r = await h.warden.link(handle, jobId);
      expect(r.exitStatus).toBe(4);
      expect(r.stdout.toString()).toBe('started\ndone\n');
    } finally {
      writeFileSync(pidsMax, 'max');
    }
  });

  it('a process the job leaves running does not hold the link back, and stays under the cap', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const r = await h.warden.run(job(handle, '(sleep 2; yes | head -c 1000000) & echo started'));
    expect(r.exitStatus).toBe(0);
    expect(r.stdout.toString()).toBe('started\n');
    const { jobId } = await h.warden.spawn(job(handle, '(sleep 1; yes | head -c 1000000) & echo left'));
    const dir = jobDir(handle, jobId);
    for (let i = 0; i < 600 && !existsSync(join(dir, 'output_exceeded')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(join(dir, 'stdout')).size).toBe(CAP);
    expect((await h.warden.link(handle, jobId)).info.events).toContain('command exceeded maximum output');
  });
});
