/**
 * The stager's work root: where each task's tree is created and, minutes later, deleted.
 *
 * On ext4 without a journal (this dev box's disk, and many VM images), allocating an inode
 * skips every inode of the group freed in the last 1–5 minutes, one by one (ext4
 * `recently_deleted`), so a stager that keeps creating and deleting 10 000-file trees in the
 * same place pays O(recently deleted) per file: measured here, 10 000 creates took 4–8 s
 * after the previous task's workspace was removed, against 0.2 s in a fresh block group.
 * Marking the work root as a top of directory hierarchies (`chattr +T`, ext4's Orlov
 * allocator) makes each task directory made under it start in a fresh block group.
 * Best effort: where chattr or the flag is unsupported (tmpfs, other filesystems, Lambda),
 * nothing changes.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

const prepared = new Map<string, Promise<boolean>>();

/** Creates the work root (once per process) and asks the filesystem to spread task trees. */
export function prepareWorkRoot(workRoot: string): Promise<boolean> {
  let done = prepared.get(workRoot);
  if (!done) {
    done = mkdir(workRoot, { recursive: true }).then(() => spreadSubdirectories(workRoot));
    prepared.set(workRoot, done);
    done.catch(() => prepared.delete(workRoot));
  }
  return done;
}

/** `chattr +T dir`; resolves false (never rejects) where that is not possible. */
export function spreadSubdirectories(dir: string): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('chattr', ['+T', dir], { timeout: 5000 }, (err) => resolve(!err));
  });
}
