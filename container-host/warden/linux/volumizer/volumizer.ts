import { WardenError, type DiskLimits } from '../../server/service.ts';
import { checkCustomBase, ensureDefaultBase, ensureDevTemplate } from './base-rootfs.ts';

/** What the container's init needs to assemble its root: overlay lower, host binds, /dev. */
export interface RootfsPlan {
  base: string;
  hostBinds: string[];
  dev: string;
}

/** The rootfs (and, from issue 6, disk) part of the gardener. */
export interface Volumizer {
  plan(customRootfs?: string): Promise<RootfsPlan>;
  limitDisk(handle: string, limits: DiskLimits): Promise<DiskLimits>;
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

  constructor(opts: { rootfsDir: string; defaultRootfs?: string; hostBinds?: string[] }) {
    this.#rootfsDir = opts.rootfsDir;
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
    this.#defaults.catch(() => { this.#defaults = undefined; });
    return this.#defaults;
  }

  async plan(customRootfs?: string): Promise<RootfsPlan> {
    const defaults = await this.#prepareDefaults();
    if (!customRootfs) return defaults;
    try {
      await checkCustomBase(customRootfs);
    } catch (e) {
      throw new WardenError(`cannot use rootfs: ${(e as Error).message}`);
    }
    return { base: customRootfs, hostBinds: [], dev: defaults.dev };
  }

  async limitDisk(): Promise<DiskLimits> {
    throw new WardenError('limit_disk is not supported yet (Warden daemon II)');
  }
}
