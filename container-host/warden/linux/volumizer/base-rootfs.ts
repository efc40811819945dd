import { cp, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { runHost } from '../host-command.ts';

/** Bump when the layout below changes: a new name makes hosts assemble the new one. */
const BASE_NAME = 'base-2';
const DEV_NAME = 'dev-1';

/** Top-level host directories that hold programs and libraries; symlinks are mirrored. */
const PROGRAM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr'];
/**
 * Host /etc directories bound read-only like the program directories, for the same reason:
 * Debian's JDK keeps java.security, jvm.cfg and the rest of its conf under /etc/java-<N>-openjdk,
 * symlinked from /usr/lib/jvm, and updates them with /usr (a copy would go stale; the JVM does
 * not start without them).
 */
const ETC_BINDS = /^java-/;
/** Host /etc entries that are neither secrets nor host identity, and that runtimes need. */
const ETC_COPIES = ['alternatives', 'ssl/certs', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'localtime', 'os-release', 'mime.types'];

const DEVICES: Array<[string, number, number]> = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];

export interface DefaultBase {
  base: string;
  hostBinds: string[];
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Assembles `dir` under a temporary name and renames it into place: never half-built. */
async function buildOnce(dir: string, build: (tmp: string) => Promise<void>): Promise<void> {
  if (await exists(dir)) return;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true, mode: 0o755 });
  try {
    await build(tmp);
    await rename(tmp, dir).catch(async (e) => {
      if (!(await exists(dir))) throw e; // someone else won the race: theirs is as good
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The default base: an own minimal /etc and empty mount points; the host's program
 * directories (and the JDK's /etc/java-*) are bound read-only at container start (never
 * /root, /home, /var or secrets).
 */
export async function ensureDefaultBase(rootfsDir: string, hostBinds?: string[]): Promise<DefaultBase> {
  const base = join(rootfsDir, BASE_NAME);
  const binds: string[] = [];
  const links: Array<[string, string]> = [];
  for (const dir of PROGRAM_DIRS) {
    const st = await lstat(dir).catch(() => undefined);
    if (st?.isSymbolicLink()) links.push([dir, await readlink(dir)]);
    else if (st?.isDirectory()) binds.push(dir);
  }
  for (const name of (await readdir('/etc').catch(() => [] as string[])).filter((n) => ETC_BINDS.test(n)).sort()) {
    if ((await stat(join('/etc', name)).catch(() => undefined))?.isDirectory()) binds.push(join('/etc', name));
  }
  const allBinds = [...new Set([...binds, ...(hostBinds ?? [])])];

  await buildOnce(base, async (tmp) => {
    for (const d of ['etc', 'proc', 'sys', 'dev', 'home', 'run', 'var/tmp', 'var/log', 'opt', 'mnt']) {
      await mkdir(join(tmp, d), { recursive: true, mode: 0o755 });
    }
    await mkdir(join(tmp, 'tmp'));
    await chmod(join(tmp, 'tmp'), 0o1777);
    await chmod(join(tmp, 'var/tmp'), 0o1777);
    await mkdir(join(tmp, 'root'), { mode: 0o700 });
    for (const [dir, target] of links) await symlink(target, join(tmp, dir));
    for (const dir of allBinds) await mkdir(join(tmp, dir), { recursive: true, mode: 0o755 });

    const etc = join(tmp, 'etc');
    await writeFile(join(etc, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    await writeFile(join(etc, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    await writeFile(join(etc, 'hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    await writeFile(join(etc, 'nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n');
    // Content, not the file: the host's is often a symlink into its own /run.
    await writeFile(join(etc, 'resolv.conf'), await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
    for (const entry of ETC_COPIES) {
      const src = join('/etc', entry);
      if (!(await exists(src))) continue;
      await mkdir(join(etc, entry, '..'), { recursive: true });
      await cp(src, join(etc, entry), { recursive: true, verbatimSymlinks: true, force: true });
    }
  });
  return { base, hostBinds: allBinds };
}

/** A /dev with only harmless nodes; bound read-only (writes to devices still work). */
export async function ensureDevTemplate(rootfsDir: string): Promise<string> {
  const dev = join(rootfsDir, DEV_NAME);
  await buildOnce(dev, async (tmp) => {
    await mkdir(join(tmp, 'pts'));
    await mkdir(join(tmp, 'shm'));
    for (const [name, major, minor] of DEVICES) {
      await runHost('creating device nodes', ['mknod', '-m', '666', join(tmp, name), 'c', String(major), String(minor)]);
    }
    for (const [name, target] of [
      ['ptmx', 'pts/ptmx'],
      ['fd', '/proc/self/fd'],
      ['stdin', '/proc/self/fd/0'],
      ['stdout', '/proc/self/fd/1'],
      ['stderr', '/proc/self/fd/2'],
    ]) {
      await symlink(target, join(tmp, name));
    }
  });
  return dev;
}

/**
 * A custom base must be a directory. Its /bin/bash (and setpriv, for unprivileged jobs) may
 * come from a bind mount of the request, so they are not checked here.
 */
export async function checkCustomBase(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`rootfs ${path} is not a directory`);
}
