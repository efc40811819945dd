import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WardenError } from '../../server/service.ts';
import { runHost } from '../host-command.ts';

const SHIM = fileURLToPath(new URL('./rsync-shim.sh', import.meta.url));
const CONFIG = 'rsyncd.conf';

/**
 * copy_in / copy_out with rsync's semantics (a trailing `/` copies a directory's contents).
 * The container side is a single-use rsync daemon that chroots into the container's root (as
 * its init sees it, mounts included) before touching a path, so symlinks in the container
 * resolve inside it and never reach the host. Its binary is the host's: any rootfs works.
 */
export class RsyncCopier {
  readonly #rsync: string;

  constructor(rsyncPath: string) {
    this.#rsync = rsyncPath;
  }

  /** Written once per container, when its init is known. */
  async prepare(containerDir: string, initPid: number): Promise<void> {
    await writeFile(join(containerDir, CONFIG), [
      '[root]',
      `path = /proc/${initPid}/root`,
      'use chroot = yes',
      'numeric ids = yes',
      'munge symlinks = no',
      'read only = no',
      'list = no',
      'uid = 0',
      'gid = 0',
      '',
    ].join('\n'));
  }

  async copyIn(containerDir: string, src: string, dst: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
    const args = owner ? [`--chown=${owner.uid}:${owner.gid}`] : [];
    await this.#run(containerDir, 'copy_in', [...args, '--', src, remote(dst)]);
  }

  async copyOut(containerDir: string, src: string, dst: string, owner: string | undefined): Promise<void> {
    const args = owner ? [`--chown=${owner}`] : [];
    await this.#run(containerDir, 'copy_out', [...args, '--', remote(src), dst]);
  }

  async #run(containerDir: string, request: string, args: string[]): Promise<void> {
    const result = await runHost(request, [this.#rsync, '-a', '--numeric-ids', '-e', SHIM, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DW_RSYNC: this.#rsync, DW_RSYNC_CONF: join(containerDir, CONFIG) },
      allowFailure: true,
    });
    if (result.code !== 0) {
      throw new WardenError(`${request} failed: ${result.stderr.toString().trim() || `rsync exited ${result.code}`}`);
    }
  }
}

/** A path in the container as the daemon module names it (`root` is the container's /). */
function remote(path: string): string {
  return `container::root/${path.replace(/^\/+/, '')}`;
}
