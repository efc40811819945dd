/**
 * What two parts of a job's start cost on `run true`: the seccomp filter and the output cappers
 * (job.sh's `head -c` on each stream). Three Linux backends in this process, each with one
 * container: the default (filter, output captured through the cappers), one with
 * `seccompHelper: ''`, and the default asked to discard output (no cappers). Runs go round the
 * three in turn, so all see the same load. Prints p50 and p90 of each and the differences.
 *
 *   npx node test/bench/job-run.ts [--runs 200]      (as root, after npx dropwarden setup)
 */
import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLinuxWardenService, type LinuxWardenService } from '../../container-host/warden/linux/index.ts';
import { cgroupParentDirs } from '../warden/linux/helpers.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '200' } }, strict: false });
const RUNS = Number(args.runs);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

interface Variant {
  what: string;
  warden: LinuxWardenService;
  handle: string;
  dir: string;
  parent: string;
  discardOutput: boolean;
  times: number[];
}

async function variant(name: string, what: string, opts: { seccompHelper?: string; discardOutput?: boolean } = {}): Promise<Variant> {
  const dir = mkdtempSync(join(tmpdir(), `dw-bench-${name}-`));
  const parent = `dropwarden-bench-${name}-${process.pid}`;
  const warden = await createLinuxWardenService({
    depotDir: join(dir, 'depot'),
    rootfsDir: join(dir, 'rootfs'),
    cgroupParent: parent,
    network: false,
    disk: false,
    ...(opts.seccompHelper === undefined ? {} : { seccompHelper: opts.seccompHelper }),
  });
  const { handle } = await warden.create({ bindMounts: [] });
  return { what, warden, handle, dir, parent, discardOutput: opts.discardOutput ?? false, times: [] };
}

const full = await variant('default', 'default (filter, cappers)');
const noFilter = await variant('nofilter', "seccompHelper ''", { seccompHelper: '' });
const noCappers = await variant('discard', 'discard_output (no cappers)', { discardOutput: true });
const all = [full, noFilter, noCappers];
try {
  for (let i = 0; i < RUNS + 10; i++) {
    for (let k = 0; k < all.length; k++) {
      const v = all[(i + k) % all.length];
      const t0 = performance.now();
      const r = await v.warden.run({ handle: v.handle, script: 'true', privileged: false, discardOutput: v.discardOutput });
      if (r.exitStatus !== 0) throw new Error(`run true exited ${r.exitStatus}: ${r.stderr.toString()}`);
      if (i >= 10) v.times.push(performance.now() - t0); // 10 warm-up runs each, not counted
    }
  }
  const line = (v: Variant) => `${v.what.padEnd(30)} p50 ${pct(v.times, 50).toFixed(2)} ms   p90 ${pct(v.times, 90).toFixed(2)} ms`;
  const diff = (a: Variant, b: Variant) => (pct(a.times, 50) - pct(b.times, 50)).toFixed(2);
  process.stdout.write(`run true, ${RUNS} runs each, in turn\n${all.map(line).join('\n')}\n`);
  process.stdout.write(`the filter at p50: ${diff(full, noFilter)} ms; the cappers at p50: ${diff(full, noCappers)} ms\n`);
} finally {
  for (const v of all) {
    await v.warden.destroyAll();
    await v.warden.close();
    rmSync(v.dir, { recursive: true, force: true });
    for (const d of cgroupParentDirs(v.parent)) rmdirSync(d);
  }
}
