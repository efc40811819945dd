/**
 * The directory under which every staging task gets its workspace. The workspaces left in it are
 * removed when a sandbox or worker starts (a task cut off by a timeout never ran its own cleanup).
 *
 * On ext2/3/4 it is also marked a "top directory" (chattr +T), so the allocator spreads the
 * workspaces made in it across block groups instead of packing each next to the last. Without
 * a journal, ext4 will not reuse an inode freed in the last ~30 s and scans past every such
 * one on each allocation: a 10 000-file workspace created beside the one just removed took
 * 4–9 s to unpack here instead of 0.2 s. Elsewhere (tmpfs, XFS, no chattr) this does nothing.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** A task's workspace is named by its task id (task.ts), a random UUID. */
const WORKSPACE_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function prepareWorkRoot(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Only the workspaces left behind go: DROPWARDEN_WORK_DIR may name a directory the stager
  // shares (/tmp, say), and nothing but its own workspaces is the stager's to remove.
  for (const name of await readdir(dir)) {
    if (WORKSPACE_NAME.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
  await new Promise<void>((resolve) => execFile('chattr', ['+T', dir], { timeout: 5000 }, () => resolve()));
}
