/**
 * limit_disk's inode ballast against the daemon's other work: a real wardend (images of the
 * default disk.maxInodes, or --inodes N), one container given an inode limit of 1000 (the
 * ballast: the rest of the image's inodes), then the limit lifted (the ballast removed), then
 * destroyed; meanwhile another
 * connection Pings in a loop. The baseline in the same run: the same Pings with nothing else
 * going on. Prints each step's time, the Pings' p50/p99/max during each, and the image's real
 * size on the host disk with the ballast in place.
 *
 *   npx node test/bench/limit-disk-ping.ts [--inodes 1000000]     (as root, after npx dropwarden setup)
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WardendProcess } from '../warden/integration/wardend.ts';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const { values: args } = parseArgs({ options: { inodes: { type: 'string' } }, strict: false });
const d = new WardendProcess('bench-diskping', { disk: args.inodes ? { maxInodes: Number(args.inodes) } : {} });
await d.start();
try {
  const [a, c] = await Promise.all([d.client(), d.client()]);
  /** Pings on `c` until `work` settles; the latencies, and how long `work` took. */
  async function pingDuring(work: Promise<unknown>): Promise<{ ms: number; pings: number[] }> {
    const t0 = performance.now();
    let done = false;
    void work.finally(() => {
      done = true;
    });
    const pings: number[] = [];
    while (!done) {
      const p0 = performance.now();
      await c.call('Ping', {});
      pings.push(performance.now() - p0);
    }
    await work;
    return { ms: performance.now() - t0, pings };
  }
  const idle = await pingDuring(new Promise((r) => setTimeout(r, 2000)));
  const { handle } = await a.call('Create', {});
  const image = join(d.backend.depotDir, handle.toString(), 'disk.img');
  const steps = [
    ['idle (baseline)', idle],
    ['limit_disk inode_limit 1000', await pingDuring(a.call('LimitDisk', { handle, inode_limit: 1000 }))],
  ] as Array<[string, { ms: number; pings: number[] }]>;
  // What the ballast writes reaches the image once the filesystem is synced (else at writeback).
  execFileSync('sync', ['-f', join(d.backend.depotDir, handle.toString(), 'disk')]);
  const imageMb = (statSync(image).blocks * 512) / 1e6;
  steps.push(['limit_disk inode_limit 0', await pingDuring(a.call('LimitDisk', { handle, inode_limit: 0 }))]);
  await a.call('LimitDisk', { handle, inode_limit: 1000 });
  steps.push(['destroy (ballast in place)', await pingDuring(a.call('Destroy', { handle }))]);
  for (const [what, s] of steps) {
    process.stdout.write(
      `${what.padEnd(28)} ${what.startsWith('idle') ? '' : `took ${(s.ms / 1000).toFixed(2)} s; `}` +
        `${s.pings.length} pings: p50 ${pct(s.pings, 50).toFixed(2)} ms, p99 ${pct(s.pings, 99).toFixed(2)} ms, max ${s.pings.reduce((m, x) => Math.max(m, x), 0).toFixed(2)} ms\n`,
    );
  }
  process.stdout.write(`image on the host disk with the ballast: ${imageMb.toFixed(0)} MB\n`);
} finally {
  await d.cleanup();
}
