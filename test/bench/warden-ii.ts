/**
 * Warden II benchmark (issue 6): create+destroy p50/p99 of the Linux backend in-process, with
 * no networking and no disk, with networking, and with networking plus a disk limit; and the
 * cost of each create step that issue 6 adds.
 *
 *   node test/bench/warden-ii.ts [--cycles 100]
 *
 * Needs root, namespaces, overlayfs, iptables, iproute2 and e2fsprogs. Makes its own depot,
 * cgroup parent, iptables prefix and address pool, and removes them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLinuxWardenService, type LinuxWardenConfig } from '../../container-host/warden/linux/index.ts';
import { Iptables, NetNames } from '../../container-host/warden/linux/networker/iptables.ts';

const { values: args } = parseArgs({ options: { cycles: { type: 'string', default: '100' } }, strict: false });
const CYCLES = Number(args.cycles);
const PREFIX = `bn${process.pid % 10000}`;
const POOL = '100.100.0.0/22';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function measure(
  label: string,
  config: Partial<LinuxWardenConfig>,
  after?: (w: Awaited<ReturnType<typeof createLinuxWardenService>>, h: string) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-bench2-'));
  const w = await createLinuxWardenService({ depotDir: join(dir, 'depot'), rootfsDir: join(dir, 'rootfs'), cgroupParent: `dw-bench2-${process.pid}`, ...config });
  try {
    const { handle } = await w.create({ bindMounts: [] }); // warm-up: the base rootfs is assembled once
    await w.destroy(handle);
    const creates: number[] = [];
    const totals: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const t0 = performance.now();
      const { handle: h } = await w.create({ bindMounts: [] });
      const t1 = performance.now();
      if (after) await after(w, h);
      await w.destroy(h);
      creates.push(t1 - t0);
      totals.push(performance.now() - t0);
    }
    const f = (n: number): string => `${n.toFixed(1)} ms`;
    console.log(`${label.padEnd(44)} create p50 ${f(pct(creates, 50))}  create+destroy p50 ${f(pct(totals, 50))}  p99 ${f(pct(totals, 99))}`);
  } finally {
    await w.destroyAll();
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const net = { pool: POOL, prefix: PREFIX, portPool: { first: 64001, size: 1000 }, mtu: 1500 };
const disk = { maxBytes: 64 * 1024 ** 3, maxInodes: 1_000_000 };
console.log(`warden II: ${CYCLES} sequential cycles each`);
try {
  await measure('no network, no disk (issue 5 baseline)', { network: false, disk: false });
  await measure('network', { network: net, disk: false });
  await measure('network + disk image (64 GiB sparse)', { network: net, disk });
  await measure('network + disk + limit_disk 1 GiB + net_in', { network: net, disk }, async (w, h) => {
    await w.limitDisk(h, { byteLimit: 1024 ** 3 });
    await w.netIn({ handle: h, containerPort: 8080 });
  });
} finally {
  await new Iptables(new NetNames(PREFIX), POOL).removeGlobal();
}
