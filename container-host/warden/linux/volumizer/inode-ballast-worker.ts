/**
 * The inode ballast's file work, in a worker thread (disk-image.ts): up to a million creates or
 * unlinks, one syscall each, that would otherwise hold wardend's event loop for tens of seconds.
 * Each ballast inode is a symlink to "x": one syscall to make, its target kept in the inode.
 */
import { symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

export interface BallastJob {
  dir: string;
  from: number;
  to: number;
}
/** `count`: ballast files there now; `error`: why it stopped short (ENOSPC is not one: the filesystem is already full). */
export interface BallastDone {
  count: number;
  error?: string;
}

const { dir, from, to } = workerData as BallastJob;
let n = from;
let error: string | undefined;
try {
  for (; n > to; n--) {
    try {
      unlinkSync(join(dir, String(n)));
    } catch (e) {
      // Already gone (a count the depot did not get to keep after a failed limit_disk): fine.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  for (; n < to; n++) symlinkSync('x', join(dir, String(n + 1)));
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') error = (e as Error).message;
}
parentPort!.postMessage({ count: n, ...(error && { error }) } satisfies BallastDone);
