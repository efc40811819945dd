/**
 * The seccomp filter's cost on `run true`: two Linux backends in this process, one whose
 * unprivileged jobs start under wardend's seccomp helper (the default) and one with
 * `seccompHelper: ''`, each with one container; runs alternate between them so both see the
 * same load. Prints p50 and p90 of each and the difference.
 *
 *   npx node test/bench/seccomp-run.ts [--runs 200]      (as root, after npx dropwarden setup)
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

async function backend(name: string, seccompHelper?: string): Promise<{ warden: LinuxWardenService; handle: string; dir: string; parent: string; times: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), `dw-bench-${name}-`));
  const parent = `dropwarden-bench-${name}-${process.pid}`;
  const warden = await createLinuxWardenService({
    depotDir: join(dir, 'depot'), rootfsDir: join(dir, 'rootfs'), cgroupParent: parent,
    network: false, disk: false, ...(seccompHelper === undefined ? {} : { seccompHelper }),
  });
  const { handle } = await warden.create({ bindMounts: [] });
  return { warden, handle, dir, parent, times: [] };
}

const filtered = await backend('seccomp');
const plain = await backend('plain', '');
try {
  for (let i = 0; i < RUNS + 10; i++) {
    for (const b of i % 2 ? [filtered, plain] : [plain, filtered]) {
      const t0 = performance.now();
      const r = await b.warden.run({ handle: b.handle, script: 'true', privileged: false, discardOutput: false });
      if (r.exitStatus !== 0) throw new Error(`run true exited ${r.exitStatus}: ${r.stderr.toString()}`);
      if (i >= 10) b.times.push(performance.now() - t0); // 10 warm-up runs each, not counted
    }
  }
  const line = (what: string, t: number[]) => `${what.padEnd(22)} p50 ${pct(t, 50).toFixed(2)} ms   p90 ${pct(t, 90).toFixed(2)} ms`;
  process.stdout.write(`run true, ${RUNS} runs each, alternating\n${line('with seccomp filter', filtered.times)}\n${line('without (seccompHelper \'\')', plain.times)}\n`);
  process.stdout.write(`difference at p50: ${(pct(filtered.times, 50) - pct(plain.times, 50)).toFixed(2)} ms\n`);
} finally {
  for (const b of [filtered, plain]) {
    await b.warden.destroyAll();
    await b.warden.close();
    rmSync(b.dir, { recursive: true, force: true });
    for (const d of cgroupParentDirs(b.parent)) rmdirSync(d);
  }
}
