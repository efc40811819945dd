import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostMountsMentioning, job, skipReason, startWarden, waitFor, type Harness } from './helpers.ts';
import { loopDevicesMentioning } from './net-helpers.ts';

describe.skipIf(skipReason)('warden linux backend: limit_disk', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startWarden('disk', { disk: { maxBytes: 2 * 1024 ** 3, maxInodes: 50_000 } });
  });
  afterAll(async () => {
    await h?.close();
    // A loop device detaches itself once the dead container's mount namespace lets go of it.
    await waitFor(async () => loopDevicesMentioning(h.dir).length === 0, 10_000);
  });

  it('refuses writes beyond the byte limit inside the container, privileged or not; raising it lets them through', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    const limits = await h.warden.limitDisk(handle, { byteLimit: 20 * 1024 * 1024 });
    expect(limits).toMatchObject({ byteLimit: 20 * 1024 * 1024, blockLimit: 20 * 1024, byteHard: 20 * 1024 * 1024 });
    expect(await h.warden.limitDisk(handle, {})).toEqual(limits);

    const small = await h.warden.run(job(handle, 'head -c 10M /dev/zero > $HOME/ten && echo ok'));
    expect(small.stdout.toString()).toBe('ok\n');
    const big = await h.warden.run(job(handle, 'head -c 15M /dev/zero > $HOME/fifteen'));
    expect(big.exitStatus).not.toBe(0);
    expect(big.stderr.toString()).toMatch(/No space left on device/);
    const root = await h.warden.run(job(handle, 'head -c 15M /dev/zero > /root/fifteen', { privileged: true }));
    expect(root.stderr.toString()).toMatch(/No space left on device/);

    const stat = (await h.warden.info(handle)).diskStat!;
    expect(stat.bytesUsed).toBeGreaterThan(19 * 1024 * 1024);
    expect(stat.bytesUsed).toBeLessThanOrEqual(20 * 1024 * 1024 + 64 * 1024);

    await h.warden.run(job(handle, 'rm -f $HOME/fifteen; rm -f /root/fifteen', { privileged: true }));
    await h.warden.limitDisk(handle, { byteLimit: 40 * 1024 * 1024 });
    const again = await h.warden.run(job(handle, 'head -c 15M /dev/zero > $HOME/fifteen && echo ok'));
    expect(again.stdout.toString()).toBe('ok\n');
    // 0 clears the limit (the original's quota semantics): 60 MB fits again.
    expect(await h.warden.limitDisk(handle, { byteLimit: 0 })).toMatchObject({ byteLimit: 0, blockLimit: 0 });
    const cleared = await h.warden.run(job(handle, 'head -c 60M /dev/zero > $HOME/sixty && echo ok'));
    expect(cleared.stdout.toString()).toBe('ok\n');
    await h.warden.destroy(handle);
  });

  it('an inode limit beside a byte limit leaves the whole byte limit to the container', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await h.warden.limitDisk(handle, { byteLimit: 50 * 1024 * 1024, inodeLimit: 1000 });
    // The inode ballast's directory (~1 MB for ~49 000 entries here) is not the container's.
    const fits = await h.warden.run(job(handle, 'head -c 49M /dev/zero > $HOME/most && echo ok'));
    expect(fits.stderr.toString()).toBe('');
    expect(fits.stdout.toString()).toBe('ok\n');
    const over = await h.warden.run(job(handle, 'head -c 2M /dev/zero > $HOME/more'));
    expect(over.stderr.toString()).toMatch(/No space left on device/);
    const stat = (await h.warden.info(handle)).diskStat!;
    expect(stat.bytesUsed).toBeGreaterThan(49 * 1024 * 1024);
    expect(stat.bytesUsed).toBeLessThanOrEqual(50 * 1024 * 1024 + 64 * 1024);
    await h.warden.destroy(handle);
  });

  it('refuses files beyond the inode limit', async () => {
    const { handle } = await h.warden.create({ bindMounts: [] });
    await h.warden.limitDisk(handle, { inodeLimit: 500 });
    const r = await h.warden.run(job(handle, 'mkdir -p $HOME/many && cd $HOME/many && for i in $(seq 1 1000); do : > f$i || { echo stopped at $i; exit 1; }; done'));
    expect(r.exitStatus).toBe(1);
    const at = Number(/stopped at (\d+)/.exec(r.stdout.toString())?.[1]);
    expect(at).toBeGreaterThan(450);
    expect(at).toBeLessThanOrEqual(500);
    expect((await h.warden.info(handle)).diskStat!.inodesUsed).toBeLessThanOrEqual(500);
    await h.warden.destroy(handle);
    expect(hostMountsMentioning(h.dir)).toBe(0);
  });
});
