/**
 * `dropwarden up` as a user runs it: prerequisites checked, every part started, the sample
 * apps staged and started (each printed URL answers 200), and Ctrl-C leaving no container,
 * process, iptables rule or cgroup behind. Plus the pieces `up` is made of, without a stack.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aptCommand, checkPrerequisites, realHost, type HostProbe, listedPackages, PrerequisiteError, REQUIRED_PROGRAMS } from '../../local/prerequisites.ts';
import { claimSlot, SLOT_COUNT, slotResources } from '../../local/slots.ts';
import { worthShowing } from '../../cli/commands/up.ts';
import { SAMPLE_APPS, selectSamples } from '../../samples/index.ts';
import { CLI } from '../support/cli.ts';
import { routeGet } from '../support/routes.ts';
import { alive } from '../support/processes.ts';

const fakeHost = (over: Partial<HostProbe> = {}): HostProbe => ({
  platform: 'linux',
  euid: 0,
  hasProgram: () => true,
  installedPackages: (packages) => new Set(packages),
  cgroupProblem: () => undefined,
  hasOverlayfs: () => true,
  namespaceProblem: () => undefined,
  ...over,
});

describe('prerequisites', () => {
  it('pass on a host that has everything', () => {
    expect(checkPrerequisites(fakeHost())).toEqual({ problems: [], packages: [] });
  });

  it("name each missing program's Debian package once, and the exact apt-get line", () => {
    const report = checkPrerequisites(fakeHost({ hasProgram: (p) => !['setpriv', 'nsenter', '/usr/bin/tini-static'].includes(p) }));
    expect(report.packages).toEqual(['util-linux', 'tini']);
    expect(new PrerequisiteError(report).message).toContain('run apt-get install -y --no-install-recommends --no-upgrade util-linux tini');
  });

  it('name every listed package dpkg lacks, before those of missing programs, and never ask apt to upgrade', () => {
    const listed = ['tini', 'ruby-rack', 'php-cli'];
    const report = checkPrerequisites(fakeHost({ installedPackages: () => new Set(['tini']), hasProgram: (p) => p !== 'ip' }), listed);
    expect(report.packages).toEqual(['ruby-rack', 'php-cli', 'iproute2']);
    expect(aptCommand(report.packages)).toBe('apt-get install -y --no-install-recommends --no-upgrade ruby-rack php-cli iproute2');
    // Without dpkg, the programs are all there is to go by.
    expect(checkPrerequisites(fakeHost({ installedPackages: () => undefined }), listed).packages).toEqual([]);
  });

  it('say what to do about what no package fixes', () => {
    const report = checkPrerequisites(fakeHost({ euid: 1000, hasOverlayfs: () => false, cgroupProblem: () => 'cgroup v1 controllers not mounted: pids' }));
    expect(report.problems.map((p) => p.fix)).toEqual([
      'run it as root: sudo npm start',
      expect.stringContaining('modprobe overlay'),
      expect.stringContaining('/sys/fs/cgroup'),
    ]);
  });

  it('list every package a program or a sample needs (container-host/debian-packages.txt)', () => {
    const listed = listedPackages();
    for (const { pkg } of REQUIRED_PROGRAMS) expect(listed).toContain(pkg);
    for (const app of SAMPLE_APPS) for (const need of app.needs) expect(listed).toContain(need.pkg);
  });
});

describe('local stack slots', () => {
  it('keep pools, ports, prefixes and cgroup parents of two stacks apart', () => {
    const a = slotResources(0);
    const b = slotResources(SLOT_COUNT - 1);
    expect(a).toMatchObject({ prefix: 'dwl0', pool: '100.101.0.0/20', cgroupParent: 'dropwarden-local' });
    expect(b.pool).toBe('100.101.240.0/20');
    expect(b.ports.first + b.ports.size).toBeLessThanOrEqual(32768);
    expect(a.ports.first + a.ports.size).toBeLessThanOrEqual(b.ports.first);
  });

  it('are held by one live process each, and taken over from a dead one', () => {
    const first = claimSlot();
    const second = claimSlot(first.index);
    try {
      expect(second.index).not.toBe(first.index);
    } finally {
      second.release();
    }
    first.release();
    // pid 2^22 + 1 is above pid_max: never alive
    const dead = claimSlot(undefined, 4194305);
    const mine = claimSlot(dead.index);
    expect(mine.index).toBe(dead.index);
    mine.release();
  });
});

describe('samples', () => {
  it('run where their runtime is installed, and say which package the others need', () => {
    const { runnable, skipped } = selectSamples((f) => !f.includes('php'));
    expect(runnable.map((a) => a.name)).not.toContain('hello-php');
    expect(skipped).toEqual([{ app: expect.objectContaining({ name: 'hello-php' }), why: expect.stringContaining('apt-get install php-cli') }]);
  });

  it('cover every plugin family that runs on this box', () => {
    expect(SAMPLE_APPS.map((a) => a.name).sort()).toEqual(['hello-java', 'hello-node', 'hello-php', 'hello-python', 'hello-ruby', 'hello-static']);
  });
});

it("shows the parts' warnings and plain lines, not their routine structured logs", () => {
  expect(worthShowing('wardend: SIGTERM, shutting down')).toBe(true);
  expect(worthShowing('{"level":"INFO","message":"staged"}')).toBe(false);
  expect(worthShowing('{"level":"ERROR","message":"boom"}')).toBe(true);
});

const host = checkPrerequisites(realHost(process.env));
const skip = host.problems.length || host.packages.length ? new Error(new PrerequisiteError(host).message).message : undefined;
if (skip) console.warn(`[cli/up] skipping the end-to-end up test: ${skip}`);

describe.skipIf(skip)('dropwarden up (with the sample apps)', () => {
  let stateDir: string;
  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'dw-up-demo-'));
  });
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;
  afterAll(async () => {
    // A failed assertion left `up` running: stop it the way a user would, so nothing leaks.
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await exited;
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);

  it('prints a route per sample that answers 200, and Ctrl-C leaves nothing behind', async () => {
    child = spawn(process.execPath, [CLI, 'up', '--port', '0'], {
      env: { ...process.env, DROPWARDEN_STATE_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
    exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    const stdout: string[] = [];
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        stdout.push(line);
        output.push(line);
        if (line.startsWith('Serving.')) resolve();
      });
      void exited!.then((code) => reject(new Error(`up exited (${code}):\n${output.join('\n')}`)));
    });
    const pidOfUp = child.pid!;
    const config = JSON.parse(readFileSync(join(stateDir, 'data', 'warden', 'wardend.json'), 'utf8'));
    const depot: string = config.depotDir;
    const prefix: string = config.network.prefix;

    expect(stdout[0]).toContain('ready');
    const urls = stdout.flatMap((l) => /^(hello-\S+)\s+(http:\/\/\S+)$/.exec(l)?.slice(1, 3) ?? []);
    const names = urls.filter((_, i) => i % 2 === 0);
    // All six: set-up installed every sample's runtime, so none may be skipped.
    expect(names.sort(), output.join('\n')).toEqual(SAMPLE_APPS.map((a) => a.name).sort());
    for (let i = 1; i < urls.length; i += 2) {
      // Each sample's route (DESIGN §7): http://<name>.localhost:<router port>.
      expect(urls[i]).toMatch(new RegExp(`^http://${urls[i - 1]}\\.localhost:\\d+$`));
      const res = await routeGet(urls[i]);
      expect(res.status, urls[i - 1]).toBe(200);
      expect(res.body).toContain('Hello from dropwarden!');
    }
    expect(readdirSync(depot).length).toBe(names.length);

    child.kill('SIGINT');
    expect(await exited, output.join('\n')).toBe(0);
    expect(alive(pidOfUp)).toBe(false);
    expect(readdirSync(depot)).toEqual([]);
    expect(['filter', 'nat'].flatMap((t) => execFileSync('iptables-save', ['-t', t], { encoding: 'utf8' }).split('\n')).filter((l) => l.includes(prefix))).toEqual([]);
    expect(existsSync(join('/sys/fs/cgroup/memory', config.cgroupParent)) || existsSync(join('/sys/fs/cgroup', config.cgroupParent))).toBe(false);
    // No part of the stack is still running: none names the state dir in its command line or environment.
    const leftovers = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((pid) => {
        try {
          return [`/proc/${pid}/cmdline`, `/proc/${pid}/environ`].some((f) => readFileSync(f).includes(stateDir));
        } catch {
          return false;
        }
      });
    expect(leftovers).toEqual([]);
    expect(existsSync(join(stateDir, 'stack.json'))).toBe(false);
  }, 300_000);
});
