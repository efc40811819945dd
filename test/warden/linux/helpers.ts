import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinuxWardenService, type LinuxWardenConfig, type LinuxWardenService } from '../../../container-host/warden/linux/index.ts';
import type { SpawnSpec } from '../../../container-host/warden/server/service.ts';

/** Why the real backend cannot run here, or undefined when it can. */
export function missingHostFeature(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'no overlayfs in this kernel';
  for (const bin of ['/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/setpriv', '/usr/bin/tini-static', '/usr/bin/rsync']) {
    if (!existsSync(bin)) return `${bin} is missing (npx dropwarden setup installs it; container-host/debian-packages.txt)`;
  }
  try {
    execFileSync('unshare', ['--mount', '--pid', '--uts', '--ipc', '--net', '--fork', 'true'], { stdio: 'ignore' });
  } catch {
    return 'cannot create namespaces here (unshare failed)';
  }
  return undefined;
}

export const skipReason = missingHostFeature();
if (skipReason) console.warn(`[warden/linux] skipping the real-backend tests: ${skipReason}`);

export interface Harness {
  warden: LinuxWardenService;
  dir: string;
  cgroupParent: string;
  close(): Promise<void>;
}

/** A backend with its own depot, rootfs dir and cgroup parent, so test files run side by side. */
export async function startWarden(name: string, config: Partial<LinuxWardenConfig> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), `dw-${name}-`));
  const cgroupParent = `dropwarden-test-${name}-${process.pid}`;
  const warden = await createLinuxWardenService({
    depotDir: join(dir, 'depot'),
    rootfsDir: join(dir, 'rootfs'),
    cgroupParent,
    stopTimeoutMs: 2000,
    // Networking and disk images are opt-in here: test files run side by side, and each one
    // that wants them names its own prefix and pool (one prefix per warden on a host).
    network: false,
    disk: false,
    ...config,
  });
  return {
    warden,
    dir,
    cgroupParent,
    async close() {
      await warden.destroyAll();
      await warden.close();
      removeCgroupParent(cgroupParent);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every directory named `parent` in the host's cgroup hierarchies (v1: one per controller). */
export function cgroupParentDirs(parent: string): string[] {
  const dirs: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post || !/^cgroup2? /.test(post)) continue;
    const dir = join(pre.split(' ')[4], parent);
    if (existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

function removeCgroupParent(parent: string): void {
  for (const dir of cgroupParentDirs(parent)) {
    try {
      rmdirSync(dir);
    } catch {
      // Left for the next run's start() to clean (a container cgroup is still inside).
    }
  }
}

export function job(handle: string, script: string, extra: Partial<SpawnSpec> = {}): SpawnSpec {
  return { handle, script, privileged: false, discardOutput: false, ...extra };
}

/** Mount points whose source or target mentions `needle` in the host's mount table. */
export function hostMountsMentioning(needle: string): number {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(needle)).length;
}

/** Pids of processes started for containers in `depotDir` (init, tini and what runs under them carry DW_DIR). */
export function processesOf(depotDir: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'latin1').includes(`DW_DIR=${depotDir}`);
      } catch {
        return false;
      }
    });
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleepMs(50);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

const nsDepth = (pid: string): number => {
  try {
    return /^NSpid:\s*(.*)$/m
      .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]
      .trim()
      .split(/\s+/).length;
  } catch {
    return 0; // gone meanwhile
  }
};

/** Of these host pids, those inside a container's pid namespace (one level below this process's). */
export function containerPids(pids: string[]): string[] {
  const own = nsDepth('self');
  return pids.filter((pid) => nsDepth(pid) > own);
}
