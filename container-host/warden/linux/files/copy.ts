import { chmod, lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WardenError } from '../../server/service.ts';
import { HostRequirementError } from '../errors.ts';
import { runHost } from '../host-command.ts';

const SHIM = fileURLToPath(new URL('./rsync-shim.sh', import.meta.url));
const CONFIG = 'rsyncd.conf';
/** The shim's own programs (nsenter, setpriv) are the host's; rsync itself is named by its absolute path. */
const SHIM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Who the container side of a copy runs as: the container's own user. */
export interface CopyIdentity {
  uid: number;
  gid: number;
}

/**
 * copy_in / copy_out with rsync's semantics (a trailing `/` copies a directory's contents).
 * The container side is a single-use rsync daemon that chroots into the container's root (as
 * its init sees it, mounts included) before touching a path, so symlinks in the container
 * resolve inside it and never reach the host. Its binary is the host's: any rootfs works.
 *
 * Ownership never rests on rsync's `--chown` (rsync 3.2.7's single-use daemon ignores it; 3.5.0
 * honours it). As in the original warden, where the copy ran as `vcap@container`, the daemon
 * itself runs as the container's user: what copy_in writes is that user's because that user
 * wrote it, and copy_out reads only what that user may read. copy_out's `owner` is applied by
 * `chown` on a private host copy before it is merged into the destination (see copyOut).
 */
export class RsyncCopier {
  readonly #rsync: string;

  constructor(rsyncPath: string) {
    this.#rsync = rsyncPath;
  }

  /** Written when a container's init is known: at create, and again when wardend restores it. */
  async prepare(containerDir: string, initPid: number, as: CopyIdentity): Promise<void> {
    await writeFile(join(containerDir, CONFIG), daemonConfig(`/proc/${initPid}/root`, as));
  }

  async copyIn(containerDir: string, src: string, dst: string): Promise<void> {
    await this.#run(containerDir, 'copy_in', [src, remote(dst)]);
  }

  /**
   * Without `owner`, one rsync into `dst`. With it, two: the container's files into an empty
   * private directory, `chown -R` there, then a local rsync of that copy into `dst` with the
   * same source form (a name, or a directory's contents), so `dst` is treated exactly as a
   * direct copy would treat it and nothing already in `dst` changes owner.
   */
  async copyOut(containerDir: string, src: string, dst: string, owner: string | undefined): Promise<void> {
    if (!owner) {
      await this.#run(containerDir, 'copy_out', [remote(src), dst]);
      return;
    }
    if (owner.startsWith('-') || /\s/.test(owner)) throw new WardenError('bad_request', `copy_out failed: owner ${JSON.stringify(owner)} is not a user or user:group`);
    const scratch = await mkdtemp(join(containerDir, 'copy-out-'));
    try {
      await this.#run(containerDir, 'copy_out', [remote(src), `${scratch}/`]);
      const chown = await runHost('copy_out', ['chown', '-R', '-h', '--', owner, scratch], { allowFailure: true });
      if (chown.code !== 0) throw new WardenError('host_failure', `copy_out failed: ${chown.stderr.toString().trim() || `chown exited ${chown.code}`}`);
      const copied = copiesContents(src) ? `${scratch}/` : join(scratch, basename(src));
      await this.#local('copy_out', [copied, dst]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** rsync into or out of the container (`-e` the shim, which starts the container's daemon side). */
  #run(containerDir: string, request: string, args: string[]): Promise<void> {
    return this.#rsyncCmd(request, ['-e', SHIM], args, { PATH: SHIM_PATH, DW_RSYNC: this.#rsync, DW_RSYNC_CONF: join(containerDir, CONFIG) });
  }

  /** rsync between two host paths. */
  #local(request: string, args: string[]): Promise<void> {
    return this.#rsyncCmd(request, [], args);
  }

  async #rsyncCmd(request: string, opts: string[], paths: string[], env?: NodeJS.ProcessEnv): Promise<void> {
    const result = await runHost(request, [this.#rsync, '-a', '--numeric-ids', ...opts, '--', ...paths], { env, allowFailure: true });
    if (result.code !== 0) {
      throw new WardenError('host_failure', `${request} failed: ${result.stderr.toString().trim() || `rsync exited ${result.code}`}`);
    }
  }

  /**
   * What wardend relies on, tried once at start on a scratch tree: the single-use daemon chroots
   * and runs as the configured user, so a copied file is that user's. Throws with what this
   * rsync did instead and what to do about it.
   */
  async check(scratchParent: string): Promise<void> {
    const probe = { uid: 65534, gid: 65534 };
    await mkdir(scratchParent, { recursive: true });
    const dir = await mkdtemp(join(scratchParent, 'rsync-check-'));
    try {
      const root = join(dir, 'root');
      await mkdir(join(root, 'tmp'), { recursive: true });
      await chmod(join(root, 'tmp'), 0o1777);
      await writeFile(join(dir, 'file'), 'probe', { mode: 0o600 });
      await writeFile(join(dir, CONFIG), daemonConfig(root, probe));
      await this.#run(dir, 'checking rsync', [join(dir, 'file'), remote('/tmp/file')]);
      const copied = await lstat(join(root, 'tmp/file'));
      if (copied.uid !== probe.uid || copied.gid !== probe.gid) {
        throw new Error(`its single-use daemon wrote a file as ${copied.uid}:${copied.gid}, not as the module's uid/gid ${probe.uid}:${probe.gid}`);
      }
    } catch (err) {
      const version = await runHost('checking rsync', [this.#rsync, '--version'], { allowFailure: true }).then(
        (r) => r.stdout.toString().split('\n')[0].trim(),
        () => 'cannot run it',
      );
      throw new RsyncUnusableError(
        `${this.#rsync} (${version || 'no version'}) cannot do copy_in/copy_out: ${(err as Error).message}. ` +
          'wardend needs rsync 3.1 or later whose daemon honours "use chroot" and "uid"/"gid" (Debian: apt-get install rsync); set rsyncPath in the wardend config to use another binary',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The host's rsync cannot do what copy_in/copy_out need. */
export class RsyncUnusableError extends HostRequirementError {
  override name = 'RsyncUnusableError';
}

function daemonConfig(path: string, as: CopyIdentity): string {
  return [
    '[root]',
    `path = ${path}`,
    'use chroot = yes',
    'numeric ids = yes',
    'munge symlinks = no',
    'read only = no',
    'list = no',
    `uid = ${as.uid}`,
    `gid = ${as.gid}`,
    '',
  ].join('\n');
}

/** rsync copies a directory's contents when the source ends in `/` (or `/.`). */
function copiesContents(src: string): boolean {
  return src.endsWith('/') || src.endsWith('/.') || src === '.';
}

/** A path in the container as the daemon module names it (`root` is the container's /). */
function remote(path: string): string {
  return `container::root/${path.replace(/^\/+/, '')}`;
}
