import { WardenError, type DiskLimits } from '../../server/service.ts';
import { checkCustomBase, ensureDefaultBase, ensureDevTemplate } from './base-rootfs.ts';
import { DiskImages, type DiskConfig, type DiskState } from './disk-image.ts';

/** What the container's init needs to assemble its root: overlay lower, host binds, /dev. */
export interface RootfsPlan {
  base: string;
  hostBinds: string[];
  dev: string;
  /** The overlay's upper and work dirs when they live elsewhere than `<dir>/upper`, `<dir>/work`. */
  upper?: string;
  work?: string;
}

/** The rootfs and disk part of the gardener. */
export interface Volumizer {
  plan(customRootfs?: string): Promise<RootfsPlan>;
  /** The container's disk in `dir` (undefined: disk limits are off): the plan's upper/work move onto it. */
  prepareDisk(dir: string, plan: RootfsPlan): Promise<{ plan: RootfsPlan; disk?: DiskState }>;
  limitDisk(dir: string, disk: DiskState | undefined, limits: DiskLimits): Promise<DiskLimits>;
  diskStat(dir: string, disk: DiskState | undefined): Promise<{ bytesUsed: number; inodesUsed: number } | undefined>;
  /** Undoes prepareDisk (also for a container whose record is lost); before the dir is removed. */
  releaseDisk(dir: string): Promise<void>;
}

/**
 * Overlay volumes: a read-only base (the default one assembled from the host, or a custom
 * directory) under a per-container upper layer in the depot. The overlay itself is mounted by
 * the container's init inside its own mount namespace, so it vanishes with the container.
 */
export class OverlayVolumizer implements Volumizer {
  readonly #rootfsDir: string;
  readonly #defaultRootfs?: string;
  readonly #extraBinds?: string[];
  #defaults?: Promise<{ base: string; hostBinds: string[]; dev: string }>;
  readonly #disks?: DiskImages;

  constructor(opts: { rootfsDir: string; defaultRootfs?: string; hostBinds?: string[]; disk?: DiskConfig | false }) {
    this.#rootfsDir = opts.rootfsDir;
    if (opts.disk) this.#disks = new DiskImages(opts.disk);
    this.#defaultRootfs = opts.defaultRootfs;
    this.#extraBinds = opts.hostBinds;
  }

  #prepareDefaults(): Promise<{ base: string; hostBinds: string[]; dev: string }> {
    this.#defaults ??= (async () => {
      const dev = await ensureDevTemplate(this.#rootfsDir);
      if (this.#defaultRootfs) {
        await checkCustomBase(this.#defaultRootfs);
        return { base: this.#defaultRootfs, hostBinds: [], dev };
      }
      return { ...(await ensureDefaultBase(this.#rootfsDir, this.#extraBinds)), dev };
    })();
    this.#defaults.catch(() => {
      this.#defaults = undefined;
    });
    return this.#defaults;
  }

  async plan(customRootfs?: string): Promise<RootfsPlan> {
    const defaults = await this.#prepareDefaults();
    if (!customRootfs) return defaults;
    try {
      await checkCustomBase(customRootfs);
    } catch (e) {
      throw new WardenError('bad_request', `cannot use rootfs: ${(e as Error).message}`);
    }
    return { base: customRootfs, hostBinds: [], dev: defaults.dev };
  }

  async prepareDisk(dir: string, plan: RootfsPlan): Promise<{ plan: RootfsPlan; disk?: DiskState }> {
    if (!this.#disks) return { plan };
    const { state, upper, work } = await this.#disks.prepare(dir);
    return { plan: { ...plan, upper, work }, disk: state };
  }

  async limitDisk(dir: string, disk: DiskState | undefined, limits: DiskLimits): Promise<DiskLimits> {
    if (!this.#disks || !disk) throw new WardenError('not_supported:disk', 'limit_disk needs disk limits on (this warden runs with disk: false in its config)');
    return this.#disks.limit(dir, disk, limits);
  }

  async diskStat(dir: string, disk: DiskState | undefined): Promise<{ bytesUsed: number; inodesUsed: number } | undefined> {
    if (!this.#disks || !disk) return undefined;
    return this.#disks.stat(dir, disk);
  }

  async releaseDisk(dir: string): Promise<void> {
    await DiskImages.release(dir);
  }
}
