import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostMountsMentioning, processesOf, skipReason, startWarden, waitFor, type Harness } from './helpers.ts';
import { iptablesLines, links, loopDevicesMentioning, removeWardenNetwork } from './net-helpers.ts';

/**
 * The acceptance is 1000 cycles with networking (about 80 s on a 2-core box):
 * DROPWARDEN_LEAK_CYCLES=1000 runs that; the default run does 100, a tenth of them with a disk.
 */
const CYCLES = Number(process.env.DROPWARDEN_LEAK_CYCLES ?? 100);
const DISK_CYCLES = Math.max(5, Math.round(CYCLES / 10));
const PREFIX = `lk${process.pid % 10000}`;
const POOL = '100.99.0.0/24';

function netnsCount(): number {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
}

describe.skipIf(skipReason)('warden linux backend: create/destroy with networking and disks leaves nothing behind', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startWarden('netleaks', {
      network: { pool: POOL, prefix: PREFIX, portPool: { first: 63001, size: 500 }, mtu: 1500 },
      disk: { maxBytes: 1024 ** 3, maxInodes: 20_000 },
    });
  });
  afterAll(async () => {
    try {
      await h?.close();
    } finally {
      await removeWardenNetwork(PREFIX, POOL);
    }
  });

  it(`${CYCLES} create/destroy cycles with networking (${DISK_CYCLES} with a disk limit) leave 0 netns, veths, iptables rules, loop devices and mounts`, async () => {
    const rulesBefore = iptablesLines(PREFIX).length;
    const netnsBefore = netnsCount();
    const start = Date.now();
    const parallel = 4;
    for (let i = 0; i < CYCLES; i += parallel) {
      await Promise.all(
        Array.from({ length: Math.min(parallel, CYCLES - i) }, async (_, k) => {
          const { handle } = await h.warden.create({ bindMounts: [] });
          await h.warden.netIn({ handle, containerPort: 8080 });
          await h.warden.netOut({ handle, network: '198.18.0.0/15', port: 80 });
          if (k === 0) await h.warden.limitBandwidth(handle, 1024 * 1024, 65536);
          if (i + k < DISK_CYCLES) await h.warden.limitDisk(handle, { byteLimit: 64 * 1024 * 1024 });
          await h.warden.destroy(handle);
        }),
      );
    }
    const elapsed = Date.now() - start;
    console.log(`[warden/linux] ${CYCLES} create/destroy cycles with networking in ${elapsed} ms (${(elapsed / CYCLES).toFixed(1)} ms each, ${parallel} at a time)`);

    expect(await h.warden.list()).toEqual([]);
    expect(links(PREFIX)).toEqual([]);
    expect(iptablesLines(`${PREFIX}-o-`)).toEqual([]);
    expect(iptablesLines(`${PREFIX}-n-`)).toEqual([]);
    expect(iptablesLines(PREFIX).length).toBe(rulesBefore);
    expect(netnsCount()).toBe(netnsBefore);
    expect(hostMountsMentioning(h.dir)).toBe(0);
    await waitFor(async () => loopDevicesMentioning(h.dir).length === 0, 10_000);
    expect(readdirSync(join(h.dir, 'depot'))).toEqual([]);
    // No init of ours is left, so no network namespace of ours either.
    expect(processesOf(join(h.dir, 'depot'))).toEqual([]);
  }, 600_000);
});
