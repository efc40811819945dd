import { mkdir, open, stat, statfs, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DiskLimits } from '../../server/service.ts';
import { HostError } from '../errors.ts';
import { runHost } from '../host-command.ts';
import type { BallastDone, BallastJob } from './inode-ballast-worker.ts';

export interface DiskConfig {
  /** Nominal size of each container's (sparse) image: the largest byte limit it can take. */
  maxBytes: number;
  /** Inodes of each image: the largest inode limit it can take. */
  maxInodes: number;
}

/** What the depot remembers of a container's disk (its record's `disk`). */
export interface DiskState {
  /** Filesystem block size and what the empty filesystem already uses (not the container's). */
  blockSize: number;
  baseBlocks: number;
  baseInodes: number;
  /** Hard limits in 1 KiB blocks and inodes (0: none), soft ones only reported (ext4 has no soft). */
  blockHard: number;
  blockSoft: number;
  inodeHard: number;
  inodeSoft: number;
  /** Symlinks (`.inodes/1…N`) holding inodes back for an inode limit below the image's count. */
  ballastInodes: number;
}

const IMAGE = 'disk.img';
const MOUNT = 'disk';
/** Preallocated (never written: the sparse image stays small) blocks holding bytes back. */
const BALLAST = '.ballast';
const INODE_BALLAST = '.inodes';
const BALLAST_WORKER = new URL('./inode-ballast-worker.ts', import.meta.url);

/**
 * The limit asked for by the first field set above 0; 0 (no limit, as in the original's quota)
 * when the fields given are all 0; undefined (leave it as is) when none is given.
 */
function firstSet(...xs: Array<number | undefined>): number | undefined {
  const given = xs.filter((x) => x !== undefined);
  return given.length ? (given.find((x) => x > 0) ?? 0) : undefined;
}
/** What the inode ballast's directory has grown by (its first block is in the empty filesystem's usage). */
const ballastDirBytes = (blocks512: number, blockSize: number): number => Math.max(0, blocks512 * 512 - blockSize);
const kib = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : Math.ceil(bytes / 1024));

/**
 * limit_disk through one ext4 image per container: a sparse file, formatted and loop-mounted on
 * the host at `<dir>/disk`, holding the overlay's upper and work dirs. The filesystem is as large
 * as the largest limit; a limit is enforced by a ballast beside upper/ that the container cannot
 * see: fallocated blocks for bytes (resized in place: no online shrink needed), symlinks for
 * inodes. A write beyond the limit fails with ENOSPC, whoever writes. Quotas would not hold:
 * overlayfs writes as its mounter, root with CAP_SYS_RESOURCE, which quota hard limits let
 * through (and root-reserved blocks too).
 *
 * The inode ballast costs what it holds back (an inode and a directory entry each, ~300 bytes of
 * real disk), so its file work runs in a worker thread: the daemon answers others meanwhile.
 * The ballast directory's own blocks are not the container's: they are left out of its usage.
 */
export class DiskImages {
  readonly #config: DiskConfig;
  readonly #limiting = new Map<string, Promise<DiskLimits>>();

  constructor(config: DiskConfig) {
    this.#config = config;
  }

  static mountPoint(dir: string): string {
    return join(dir, MOUNT);
  }

  /** Makes and mounts the image; returns its state and the overlay's upper/work dirs on it. */
  async prepare(dir: string): Promise<{ state: DiskState; upper: string; work: string }> {
    const image = join(dir, IMAGE);
    const mnt = join(dir, MOUNT);
    await mkdir(mnt);
    const fh = await open(image, 'wx', 0o600);
    await fh.truncate(this.#config.maxBytes);
    await fh.close();
    // No journal (the disk dies with the container), inode tables initialized lazily.
    await runHost('formatting the container disk', [
      'mkfs.ext4',
      '-q',
      '-F',
      '-b',
      '4096',
      '-m',
      '0',
      '-N',
      String(this.#config.maxInodes),
      '-O',
      '^has_journal,^resize_inode',
      '-E',
      'lazy_itable_init=1,nodiscard',
      image,
    ]);
    // noinit_itable: no background zeroing of inode tables that a new sparse file reads as zeros.
    await runHost('mounting the container disk', ['mount', '-o', 'loop,nodev,nosuid,noatime,noinit_itable', image, mnt]);
    const upper = join(mnt, 'upper');
    const work = join(mnt, 'work');
    await Promise.all([mkdir(upper), mkdir(work), mkdir(join(mnt, INODE_BALLAST)), open(join(mnt, BALLAST), 'w').then((f) => f.close())]);
    const s = await statfs(mnt);
    const state: DiskState = {
      blockSize: s.bsize,
      baseBlocks: s.blocks - s.bfree,
      baseInodes: s.files - s.ffree,
      blockHard: 0,
      blockSoft: 0,
      inodeHard: 0,
      inodeSoft: 0,
      ballastInodes: 0,
    };
    return { state, upper, work };
  }

  /** Sets the limits given (none given: reads them) and answers with all twelve fields; one at a time per container. */
  limit(dir: string, state: DiskState, req: DiskLimits): Promise<DiskLimits> {
    const previous = this.#limiting.get(dir) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#limit(dir, state, req));
    this.#limiting.set(dir, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.#limiting.get(dir) === next) this.#limiting.delete(dir);
      });
    return next;
  }

  async #limit(dir: string, state: DiskState, req: DiskLimits): Promise<DiskLimits> {
    const hardBlocks = firstSet(req.blockHard, req.blockLimit, req.block, kib(req.byteHard), kib(req.byteLimit), kib(req.byte));
    const softBlocks = firstSet(req.blockSoft, kib(req.byteSoft));
    const hardInodes = firstSet(req.inodeHard, req.inodeLimit, req.inode);
    const softInodes = firstSet(req.inodeSoft);
    const mnt = join(dir, MOUNT);
    if (hardInodes !== undefined) {
      await this.#setBallastInodes(mnt, state, hardInodes, (await statfs(mnt)).files);
      state.inodeHard = hardInodes;
    }
    // After the inodes: their directory grew or shrank, and its blocks are not the container's.
    if (hardBlocks !== undefined || (hardInodes !== undefined && state.blockHard > 0)) {
      await this.#setBallastBytes(mnt, state, (hardBlocks ?? state.blockHard) * 1024);
      if (hardBlocks !== undefined) state.blockHard = hardBlocks;
    }
    if (softBlocks !== undefined) state.blockSoft = softBlocks;
    if (softInodes !== undefined) state.inodeSoft = softInodes;
    return DiskImages.report(state);
  }

  static report(state: DiskState): DiskLimits {
    const b = state.blockHard;
    const bs = state.blockSoft;
    const i = state.inodeHard;
    return {
      blockLimit: b,
      block: b,
      blockSoft: bs,
      blockHard: b,
      inodeLimit: i,
      inode: i,
      inodeSoft: state.inodeSoft,
      inodeHard: i,
      byteLimit: b * 1024,
      byte: b * 1024,
      byteSoft: bs * 1024,
      byteHard: b * 1024,
    };
  }

  async #setBallastBytes(mnt: string, state: DiskState, limitBytes: number): Promise<void> {
    const ballast = join(mnt, BALLAST);
    const [s, b, inodeDir] = await Promise.all([statfs(mnt), stat(ballast), stat(join(mnt, INODE_BALLAST))]);
    const held = b.blocks * 512;
    // ext4 keeps a reserve of its own out of what statfs calls available: work from that.
    const used = (s.blocks - s.bfree - state.baseBlocks) * s.bsize - held - ballastDirBytes(inodeDir.blocks, s.bsize);
    const available = s.bavail * s.bsize + held;
    const target = limitBytes > 0 ? Math.max(0, Math.floor((available - Math.max(0, limitBytes - used)) / s.bsize) * s.bsize) : 0;
    if (target < b.size) {
      await truncate(ballast, target);
    } else if (target > b.size) {
      const r = await runHost('limit_disk (fallocate)', ['fallocate', '-l', String(target), ballast], { allowFailure: true });
      if (r.code !== 0) {
        // Something wrote meanwhile: hold back everything still free.
        const free = (await statfs(mnt)).bavail * s.bsize;
        await runHost('limit_disk (fallocate)', ['fallocate', '-l', String(held + free), ballast], { allowFailure: true });
      }
    }
  }

  async #setBallastInodes(mnt: string, state: DiskState, limit: number, total: number): Promise<void> {
    const target = limit > 0 ? Math.max(0, total - state.baseInodes - limit) : 0;
    if (target === state.ballastInodes) return;
    const job: BallastJob = { dir: join(mnt, INODE_BALLAST), from: state.ballastInodes, to: target };
    const done = await new Promise<BallastDone>((resolve, reject) => {
      const worker = new Worker(BALLAST_WORKER, { workerData: job });
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the inode ballast worker exited ${code} without an answer`)));
    }).catch((e: Error) => ({ count: state.ballastInodes, error: e.message }));
    // What is there now, whether or not it got all the way (the next limit_disk starts from it).
    state.ballastInodes = done.count;
    if (done.error) throw new HostError('limit_disk (inode ballast)', done.error);
  }

  /** disk_stat: what the container's files use, the ballast and the empty filesystem left out. */
  async stat(dir: string, state: DiskState): Promise<{ bytesUsed: number; inodesUsed: number }> {
    const mnt = join(dir, MOUNT);
    const [s, ballast, inodeDir] = await Promise.all([statfs(mnt), stat(join(mnt, BALLAST)), stat(join(mnt, INODE_BALLAST))]);
    return {
      bytesUsed: Math.max(0, (s.blocks - s.bfree - state.baseBlocks) * s.bsize - ballast.blocks * 512 - ballastDirBytes(inodeDir.blocks, s.bsize)),
      inodesUsed: Math.max(0, s.files - s.ffree - state.baseInodes - state.ballastInodes),
    };
  }

  /** Unmounts the image (its loop device detaches itself once the container's overlay is gone). */
  static async release(dir: string): Promise<void> {
    if (
      !(await stat(join(dir, IMAGE)).then(
        () => true,
        () => false,
      ))
    )
      return;
    const mnt = join(dir, MOUNT);
    const r = await runHost('unmounting the container disk', ['umount', mnt], { allowFailure: true });
    if (r.code !== 0 && !/not mounted|no mount point/i.test(r.stderr.toString())) {
      await runHost('unmounting the container disk', ['umount', '-l', mnt]);
    }
  }
}
