/**
 * What `dropwarden up` and the tests need from this host before they start anything: root, the
 * kernel's namespaces, overlayfs and cgroups, and the Debian packages of
 * container-host/debian-packages.txt (wardend's programs, the samples' runtimes, what the
 * runtime bundles are built from). Missing packages are installed with apt-get when we can,
 * never upgrading one that is installed; the rest is reported with exactly what to do.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectCgroups } from '../container-host/warden/linux/cgroups/detect.ts';
import { DEFAULT_CONFIG } from '../container-host/warden/linux/config.ts';

/** Programs wardend and its host scripts run, and the Debian package that brings each. */
export const REQUIRED_PROGRAMS: ReadonlyArray<{ program: string; pkg: string }> = [
  { program: 'unshare', pkg: 'util-linux' },
  { program: 'nsenter', pkg: 'util-linux' },
  { program: 'setpriv', pkg: 'util-linux' },
  { program: 'setsid', pkg: 'util-linux' },
  { program: 'losetup', pkg: 'mount' },
  { program: 'mkfs.ext4', pkg: 'e2fsprogs' },
  { program: 'sysctl', pkg: 'procps' },
  { program: 'ip', pkg: 'iproute2' },
  { program: 'tc', pkg: 'iproute2' },
  { program: 'iptables', pkg: 'iptables' },
  { program: 'iptables-save', pkg: 'iptables' },
  { program: 'iptables-restore', pkg: 'iptables' },
  // wardend runs these two by absolute path.
  { program: DEFAULT_CONFIG.tiniPath, pkg: 'tini' },
  { program: DEFAULT_CONFIG.rsyncPath, pkg: 'rsync' },
];

/** The packages of container-host/debian-packages.txt, in its order. */
export function listedPackages(file = fileURLToPath(new URL('../container-host/debian-packages.txt', import.meta.url))): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** Something the host lacks that no package fixes, with what to do about it. */
export interface HostProblem {
  what: string;
  fix: string;
}

export interface PrerequisiteReport {
  problems: HostProblem[];
  /** Debian packages to install, each once: the listed ones dpkg lacks, then those of missing programs. */
  packages: string[];
}

/** The host as the checks see it; tests pass a fake. */
export interface HostProbe {
  platform: string;
  euid: number;
  hasProgram(program: string): boolean;
  /** Of `packages`, those dpkg has installed; undefined where there is no dpkg. */
  installedPackages(packages: string[]): Set<string> | undefined;
  /** Why no cgroup hierarchy is usable, or undefined. */
  cgroupProblem(): string | undefined;
  hasOverlayfs(): boolean;
  /** Why namespaces cannot be created here, or undefined. */
  namespaceProblem(): string | undefined;
}

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** This machine; `env` is the environment of the command that asks (its PATH is searched too). */
export const realHost = (env: NodeJS.ProcessEnv): HostProbe => ({
  platform: process.platform,
  euid: process.geteuid?.() ?? -1,
  hasProgram: (program) =>
    program.startsWith('/')
      ? executable(program)
      : [...new Set([...(env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_PATH])].some((dir) => executable(join(dir, program))),
  installedPackages: (packages) => {
    const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Abbrev}\\n', ...packages], { encoding: 'utf8' });
    if (r.error) return undefined;
    // A package dpkg never heard of is named on stderr; stdout has `name status` for each one it knows.
    const lines = r.stdout.split('\n').map((line) => line.trim().split(/\s+/));
    return new Set(lines.filter(([, status]) => status?.startsWith('ii')).map(([name]) => name));
  },
  cgroupProblem: () => {
    try {
      detectCgroups(DEFAULT_CONFIG.cgroupRoot, 'dropwarden-local');
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  hasOverlayfs: () => {
    const listed = () => readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n');
    if (listed()) return true;
    spawnSync('modprobe', ['overlay'], { stdio: 'ignore' });
    return listed();
  },
  namespaceProblem: () => {
    try {
      execFileSync('unshare', ['--mount', '--pid', '--uts', '--ipc', '--net', '--fork', 'true'], { stdio: 'pipe' });
      return undefined;
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      return stderr || (err as Error).message;
    }
  },
});

/** Every check at once, so one run says everything that is missing. */
export function checkPrerequisites(host: HostProbe, listed: string[] = listedPackages()): PrerequisiteReport {
  if (host.platform !== 'linux') {
    return { problems: [{ what: `this is ${host.platform}, not Linux`, fix: 'run dropwarden up on a Linux machine (a VM will do)' }], packages: [] };
  }
  const problems: HostProblem[] = [];
  if (host.euid !== 0) {
    problems.push({ what: 'not running as root (wardend creates namespaces, cgroups, mounts and iptables rules)', fix: 'run it as root: sudo npm start' });
  }
  if (!host.hasOverlayfs()) {
    problems.push({ what: 'the kernel has no overlayfs', fix: 'load it (modprobe overlay) or use a kernel built with CONFIG_OVERLAY_FS' });
  }
  const cgroups = host.cgroupProblem();
  if (cgroups) problems.push({ what: cgroups, fix: 'mount cgroup v2 with the memory, cpu and pids controllers at /sys/fs/cgroup (or v1 hierarchies for them)' });
  const installed = host.installedPackages(listed);
  const packages = [
    ...new Set([
      ...(installed ? listed.filter((pkg) => !installed.has(pkg)) : []),
      ...REQUIRED_PROGRAMS.filter(({ program }) => !host.hasProgram(program)).map(({ pkg }) => pkg),
    ]),
  ];
  // Without unshare the namespace check says nothing new; the package list covers it.
  if (host.hasProgram('unshare') && host.euid === 0) {
    const ns = host.namespaceProblem();
    if (ns) problems.push({ what: `cannot create namespaces here (${ns})`, fix: 'run on a VM or in a privileged container' });
  }
  return { problems, packages };
}

/** --no-upgrade: a package already installed stays at the version the machine has. */
export const aptCommand = (packages: string[]) => `apt-get install -y --no-install-recommends --no-upgrade ${packages.join(' ')}`;

export class PrerequisiteError extends Error {
  override name = 'PrerequisiteError';
  readonly report: PrerequisiteReport;
  constructor(report: PrerequisiteReport) {
    const lines = report.problems.map((p) => `  - ${p.what}: ${p.fix}`);
    if (report.packages.length) lines.push(`  - missing Debian packages: run ${aptCommand(report.packages)}`);
    super(`this host cannot run the local stack yet:\n${lines.join('\n')}`);
    this.report = report;
  }
}

/** apt-get install, and once more after apt-get update when the package lists are stale. */
function aptInstall(packages: string[], say: (line: string) => void, env: NodeJS.ProcessEnv): boolean {
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', '--no-upgrade', ...packages], {
      stdio: ['ignore', 2, 2],
      env: { ...env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0;
  if (install()) return true;
  say('apt-get install failed; running apt-get update and trying again');
  spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2] });
  return install();
}

/**
 * Checks the host; installs missing packages when running as root where apt-get exists;
 * throws PrerequisiteError (with the exact commands to run) when anything is still missing.
 */
export function ensurePrerequisites(say: (line: string) => void, env: NodeJS.ProcessEnv, host: HostProbe = realHost(env)): void {
  let report = checkPrerequisites(host);
  const canInstall = host.euid === 0 && (existsSync('/usr/bin/apt-get') || host.hasProgram('apt-get'));
  if (report.packages.length && canInstall) {
    const started = Date.now();
    say(`installing ${report.packages.length} missing Debian package${report.packages.length === 1 ? '' : 's'} (once): ${aptCommand(report.packages)}`);
    if (aptInstall(report.packages, say, env)) {
      report = checkPrerequisites(host);
      say(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  }
  if (report.problems.length || report.packages.length) throw new PrerequisiteError(report);
}
