/**
 * limit_disk with an inode limit makes a ballast of up to the image's inode count: seconds of
 * file work. It must not hold the daemon: on other connections Pings are answered and jobs run,
 * output cap and all, while it is under way (ordering, not timing: see test/bench/limit-disk-ping.ts
 * for how long a Ping takes meanwhile).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason } from '../linux/helpers.ts';
import { WardendProcess } from './wardend.ts';

const CAP = 256 * 1024;

describe.skipIf(skipReason)('wardend while limit_disk makes an inode ballast', () => {
  let d: WardendProcess;
  beforeAll(async () => {
    d = new WardendProcess('diskbusy', { maxOutputBytes: CAP, disk: { maxBytes: 4 * 1024 ** 3 } }); // the default 200 000 inodes: seconds of ballast
    await d.start();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('answers Pings and holds the output cap in another container meanwhile', async () => {
    const [a, b, c] = await Promise.all([d.client(), d.client(), d.client()]);
    const { handle: limited } = await a.call('Create', {});
    const { handle: other } = await b.call('Create', {});
    const events: string[] = [];
    let limitDone = false;
    const limit = a.call('LimitDisk', { handle: limited, inode_limit: 100 }).then((r) => {
      limitDone = true;
      events.push('limit_disk');
      return r;
    });
    const writer = b.call('Run', { handle: other, script: 'yes | head -c 50000000; exit 0' }).then((r) => {
      events.push('run');
      return r;
    });
    let pings = 0;
    while (!limitDone && pings < 100_000) {
      await c.call('Ping', {});
      if (!limitDone) pings++;
    }
    const [limits, run] = await Promise.all([limit, writer]);
    expect(limits.inode_limit).toBe(100);
    // Answered while the ballast was being made, not queued behind it.
    expect(pings).toBeGreaterThan(10);
    expect(events[0]).toBe('run');
    expect(run.exit_status).toBe(137);
    expect(run.stdout?.length).toBe(CAP);
    expect(run.info?.events).toContain('command exceeded maximum output');
    // And the limit holds.
    const files = await a.call('Run', { handle: limited, script: 'cd ~ && for i in $(seq 1 200); do : > f$i || { echo stopped at $i; exit 1; }; done' });
    expect(files.exit_status).toBe(1);
    expect(Number(/stopped at (\d+)/.exec(files.stdout?.toString() ?? '')?.[1])).toBeLessThanOrEqual(100);
  });
});
