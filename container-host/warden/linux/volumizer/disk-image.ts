import { closeSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { mkdir, open, stat, statfs, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskLimits } from '../../server/service.ts';
import { runHost } from '../host-command.ts';

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
  /** Empty files holding inodes back for an inode limit below the image's count. */
  ballastInodes: number;
}

const IMAGE = 'disk.img';
const MOUNT = 'disk';
/** Preallocated (never written: the sparse image stays small) blocks holding bytes back. */
const BALLAST = '.ballast';
const INODE_BALLAST = '.inodes';

/**
 * The limit asked for by the first field set above 0; 0 (no limit, as in the original's quota)
 * when the fields given are all 0; undefined (leave it as is) when none is given.
 */
function firstSet(...xs: Array<number | undefined>): number | undefined {
  const given = xs.filter((x) => x !== undefined);
  return given.length ? (given.find((x) => x > 0) ?? 0) : undefined;
}
const kib = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : Math.ceil(bytes / 1024));

/**
 * limit_disk through one ext4 image per container (the kernel here has no quota formats, so no
 * ext4/xfs quotas): a sparse file, formatted and loop-mounted on the host at `<dir>/disk`,
 * holding the overlay's upper and work dirs. The filesystem is as large as the largest limit;
 * a limit is enforced by a ballast beside upper/ that the container cannot see: fallocated
 * blocks for bytes (resized in place: no online shrink needed), empty files for inodes. A write
 * beyond the limit fails with ENOSPC, whoever writes (overlayfs writes as its mounter, so uid
 * quotas and root-reserved blocks would not hold).
 */
export class DiskImages {
  readonly #config: DiskConfig;

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
    await runHost('formatting the container disk', ['mkfs.ext4', '-q', '-F', '-b', '4096', '-m', '0', '-N', String(this.#config.maxInodes),
      '-O', '^has_journal,^resize_inode', '-E', 'lazy_itable_init=1,nodiscard', image]);
    await runHost('mounting the container disk', ['mount', '-o', 'loop,nodev,nosuid,noatime', image, mnt]);
    const upper = join(mnt, 'upper');
    const work = join(mnt, 'work');
    await Promise.all([mkdir(upper), mkdir(work), mkdir(join(mnt, INODE_BALLAST)), open(join(mnt, BALLAST), 'w').then((f) => f.close())]);
    const s = await statfs(mnt);
    const state: DiskState = {
      blockSize: s.bsize, baseBlocks: s.blocks - s.bfree, baseInodes: s.files - s.ffree,
      blockHard: 0, blockSoft: 0, inodeHard: 0, inodeSoft: 0, ballastInodes: 0,
    };
    return { state, upper, work };
  }

  /** Sets the limits given (none given: reads them) and answers with all twelve fields. */
  async limit(dir: string, state: DiskState, req: DiskLimits): Promise<DiskLimits> {
    const hardBlocks = firstSet(req.blockHard, req.blockLimit, req.block, kib(req.byteHard), kib(req.byteLimit), kib(req.byte));
    const softBlocks = firstSet(req.blockSoft, kib(req.byteSoft));
    const hardInodes = firstSet(req.inodeHard, req.inodeLimit, req.inode);
    const softInodes = firstSet(req.inodeSoft);
    const mnt = join(dir, MOUNT);
    if (hardBlocks !== undefined) {
      await this.#setBallastBytes(mnt, state, hardBlocks * 1024);
      state.blockHard = hardBlocks;
    }
    if (hardInodes !== undefined) {
      this.#setBallastInodes(mnt, state, hardInodes, (await statfs(mnt)).files);
      state.inodeHard = hardInodes;
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
      blockLimit: b, block: b, blockSoft: bs, blockHard: b,
      inodeLimit: i, inode: i, inodeSoft: state.inodeSoft, inodeHard: i,
      byteLimit: b * 1024, byte: b * 1024, byteSoft: bs * 1024, byteHard: b * 1024,
    };
  }

  async #setBallastBytes(mnt: string, state: DiskState, limitBytes: number): Promise<void> {
    const ballast = join(mnt, BALLAST);
    const [s, b] = await Promise.all([statfs(mnt), stat(ballast)]);
    const held = b.blocks * 512;
    // ext4 keeps a reserve of its own out of what statfs calls available: work from that.
    const used = (s.blocks - s.bfree - state.baseBlocks) * s.bsize - held;
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

  #setBallastInodes(mnt: string, state: DiskState, limit: number, total: number): void {
    const dir = join(mnt, INODE_BALLAST);
    mkdirSync(dir, { recursive: true });
    const target = limit > 0 ? Math.max(0, total - state.baseInodes - limit) : 0;
    for (; state.ballastInodes > target; state.ballastInodes--) unlinkSync(join(dir, String(state.ballastInodes)));
    try {
      for (; state.ballastInodes < target; state.ballastInodes++) closeSync(openSync(join(dir, String(state.ballastInodes + 1)), 'wx'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e; // already over the limit: none left to take
    }
  }

  /** disk_stat: what the container's files use, the ballast and the empty filesystem left out. */
  async stat(dir: string, state: DiskState): Promise<{ bytesUsed: number; inodesUsed: number }> {
    const mnt = join(dir, MOUNT);
    const [s, ballast] = await Promise.all([statfs(mnt), stat(join(mnt, BALLAST))]);
    return {
      bytesUsed: Math.max(0, (s.blocks - s.bfree - state.baseBlocks) * s.bsize - ballast.blocks * 512),
      inodesUsed: Math.max(0, s.files - s.ffree - state.baseInodes - state.ballastInodes),
    };
  }

  /** Unmounts the image (its loop device detaches itself once the container's overlay is gone). */
  static async release(dir: string): Promise<void> {
    if (!(await stat(join(dir, IMAGE)).then(() => true, () => false))) return;
    const mnt = join(dir, MOUNT);
    const r = await runHost('unmounting the container disk', ['umount', mnt], { allowFailure: true });
    if (r.code !== 0 && !/not mounted|no mount point/i.test(r.stderr.toString())) {
      await runHost('unmounting the container disk', ['umount', '-l', mnt]);
    }
  }
}
