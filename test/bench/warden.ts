/**
 * Warden I benchmark (issue 5): a real `dropwarden wardend` (child process, temp depot, socket
 * and cgroup parent) driven over the wire by the real client, against a bare `unshare` +
 * `nsenter` baseline measured in the same run.
 *
 *   node test/bench/warden.ts [--cycles 100] [--runs 100] [--alive 200] [--network] [--disk]
 *
 * Measures create+destroy p50/p99, `run true` p50, and daemon RSS with N containers alive.
 * Goals: create+destroy p50 ≤ 50 ms, run p50 ≤ 15 ms, RSS ≤ 100 MB at 200 containers.
 * Needs root, namespaces, overlayfs and the host tools of container-host/warden/linux/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WardenClient } from '../../container-host/warden/client/client.ts';

const { values: args } = parseArgs({
  options: {
    cycles: { type: 'string', default: '100' },
    runs: { type: 'string', default: '100' },
    alive: { type: 'string', default: '200' },
    // Warden I measures containers without issue 6's network and disk image; these add them.
    network: { type: 'boolean', default: false },
    disk: { type: 'boolean', default: false },
  },
  strict: false,
});
const CYCLES = Number(args.cycles);
const RUNS = Number(args.runs);
const ALIVE = Number(args.alive);
const ROOT = join(import.meta.dirname, '..', '..');
const NS = ['--mount', '--pid', '--uts', '--ipc', '--net', '--fork'];

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (n: number): string => `${n.toFixed(1)} ms`;
const now = (): number => performance.now();

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ = 100
}

function waitExit(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

// ---- the bare baseline: what namespaces alone cost from node ----

/** A bare container: unshare'd namespaces with a shell as pid 1 that says when it runs. */
async function bareStart(): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn('unshare', [...NS, '--', '/bin/sh', '-c', 'echo $$ $(cut -d" " -f4 /proc/self/stat); exec sleep infinity'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    detached: true,
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out);
    });
    child.once('exit', (code) => reject(new Error(`unshare exited ${code}`)));
  });
  child.stdout!.destroy();
  // `$$` inside is 1; the host pid is unshare's only child.
  const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ').map(Number);
  void line;
  return { child, pid: kids[0] };
}

async function bareStop(c: { child: ChildProcess; pid: number }): Promise<void> {
  process.kill(c.pid, 'SIGKILL');
  await waitExit(c.child);
}

function nsenterTrue(pid: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', ['-t', String(pid), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', 'true'], { stdio: 'ignore' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nsenter exited ${code}`))));
  });
}

// ---- wardend ----

async function startDaemon(dir: string, cgroupParent: string): Promise<{ child: ChildProcess; socket: string }> {
  const socket = join(dir, 'warden.sock');
  const config = join(dir, 'wardend.json');
  writeFileSync(
    config,
    JSON.stringify({
      socket,
      health: null,
      depotDir: join(dir, 'depot'),
      rootfsDir: join(dir, 'rootfs'),
      cgroupParent,
      stopTimeoutMs: 2000,
      ...(args.network ? {} : { network: false }),
      ...(args.disk ? {} : { disk: false }),
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'dropwarden.js'), 'wardend', '--config', config], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('wardend ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`wardend exited ${code} before it was ready`)));
  });
  return { child, socket };
}

function cgroupDirs(parent: string): string[] {
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post || !/^cgroup2? /.test(post)) continue;
    dirs.push(join(pre.split(' ')[4], parent));
  }
  return dirs;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    // test/bench/run.ts runs every benchmark: without root this one says so and stands aside.
    console.log('warden bench skipped: it needs root (namespaces, cgroups, overlayfs)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dw-bench-'));
  const cgroupParent = `dropwarden-bench-${process.pid}`;
  const daemon = await startDaemon(dir, cgroupParent);
  const client = await WardenClient.connect(daemon.socket);
  const handles = new Set<Buffer>();
  const bare: Array<{ child: ChildProcess; pid: number }> = [];
  const rows: Array<[string, string, string, string]> = [];
  try {
    // warm-up: the first create assembles the base rootfs
    const warm = await client.call('Create', {});
    await client.call('Destroy', { handle: warm.handle });
    for (let i = 0; i < 5; i++) await bareStop(await bareStart());

    // create + destroy
    const cd: number[] = [];
    const cdBare: number[] = [];
    const createOnly: number[] = [];
    const cdCpu0 = cpuMs(daemon.child.pid!);
    for (let i = 0; i < CYCLES; i++) {
      let t = now();
      const { handle } = await client.call('Create', {});
      const created = now();
      await client.call('Destroy', { handle });
      cd.push(now() - t);
      createOnly.push(created - t);
      t = now();
      await bareStop(await bareStart());
      cdBare.push(now() - t);
    }
    rows.push(['create+destroy p50', ms(pct(cd, 50)), ms(pct(cdBare, 50)), '≤ 50 ms']);
    rows.push(['create+destroy p99', ms(pct(cd, 99)), ms(pct(cdBare, 99)), '']);
    rows.push(['  of which create p50', ms(pct(createOnly, 50)), '', '']);
    rows.push(['  daemon CPU per cycle', ms((cpuMs(daemon.child.pid!) - cdCpu0) / CYCLES), '', '']);

    // run true
    const { handle } = await client.call('Create', {});
    handles.add(handle);
    const b = await bareStart();
    bare.push(b);
    const run: number[] = [];
    const runBare: number[] = [];
    for (let i = 0; i < 5; i++) await client.call('Run', { handle, script: 'true' });
    const runCpu0 = cpuMs(daemon.child.pid!);
    for (let i = 0; i < RUNS; i++) {
      let t = now();
      const r = await client.call('Run', { handle, script: 'true' });
      if (r.exit_status !== 0) throw new Error(`run true exited ${r.exit_status}`);
      run.push(now() - t);
      t = now();
      await nsenterTrue(b.pid);
      runBare.push(now() - t);
    }
    rows.push(['run true p50', ms(pct(run, 50)), ms(pct(runBare, 50)), '≤ 15 ms']);
    rows.push(['run true p99', ms(pct(run, 99)), ms(pct(runBare, 99)), '']);
    rows.push(['  daemon CPU per run', ms((cpuMs(daemon.child.pid!) - runCpu0) / RUNS), '', '']);

    // N alive at once
    const rssBefore = rssMb(daemon.child.pid!);
    let t = now();
    for (let i = 1; i < ALIVE; i++) handles.add((await client.call('Create', {})).handle);
    const createAll = now() - t;
    t = now();
    for (let i = 1; i < ALIVE; i++) bare.push(await bareStart());
    const createAllBare = now() - t;
    const listed = (await client.call('List', {})).handles?.length ?? 0;
    if (listed !== ALIVE) throw new Error(`list says ${listed} containers, expected ${ALIVE}`);
    const cpu0 = cpuMs(daemon.child.pid!);
    await new Promise((r) => setTimeout(r, 2000)); // poller rounds over all of them
    const idleCpu = (cpuMs(daemon.child.pid!) - cpu0) / 2000;
    const rss = rssMb(daemon.child.pid!);
    rows.push([`${ALIVE} alive: daemon RSS`, `${rss.toFixed(0)} MB`, `(idle daemon ${rssBefore.toFixed(0)} MB)`, '≤ 100 MB']);
    rows.push([`${ALIVE} alive: time to create`, ms(createAll), ms(createAllBare), '']);
    rows.push([`${ALIVE} alive: daemon CPU idle`, `${(idleCpu * 100).toFixed(1)} %`, '', '']);
  } finally {
    // cleanup, even on failure
    await Promise.all([...handles].map((handle) => client.call('Destroy', { handle }).catch(() => undefined)));
    await Promise.all(bare.map((c) => bareStop(c).catch(() => undefined)));
    client.close();
    daemon.child.kill('SIGTERM');
    await waitExit(daemon.child);
    for (const d of cgroupDirs(cgroupParent)) {
      try {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmdirSync(join(d, e.name));
        rmdirSync(d);
      } catch {
        // not there on this hierarchy
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const w = [28, 12, 24, 10];
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i])).join(' | ');
  console.log(`warden bench: ${CYCLES} create/destroy cycles, ${RUNS} runs, ${ALIVE} alive (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
  console.log(line(['measure', 'wardend', 'bare unshare/nsenter', 'goal']));
  for (const r of rows) console.log(line(r));
}

await main();
