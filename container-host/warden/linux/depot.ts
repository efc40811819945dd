import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WardenError, type BindMount } from '../server/service.ts';
import type { NetState } from './networker/networker.ts';
import type { DiskState } from './volumizer/disk-image.ts';

/** What the depot remembers about one container: enough to find and restore it. */
export interface ContainerRecord {
  handle: string;
  uid: number;
  graceTimeS: number;
  bindMounts: BindMount[];
  network?: string;
  /** A custom base rootfs; absent → the default one. */
  rootfs?: string;
  state: 'born' | 'active' | 'stopped';
  events: string[];
  /** Host pid of the container's init and its start time (guards against pid reuse). */
  initPid?: number;
  initStartTime?: string;
  /** The init's only child of its own, spared by stop. */
  keeperPid?: number;
  nextJobId: number;
  cpuShares?: number;
  /** The container's /30, net_in mappings and bandwidth (absent: loopback only). */
  net?: NetState;
  /** The container's disk image and limits (absent: disk limits off). */
  disk?: DiskState;
  createdAt: number;
  /**
   * When the last connection referencing the container let go (ms since the epoch); absent
   * while one does. grace_time counts from here, across daemon restarts too.
   */
  idleSince?: number;
}

const RECORD = 'container.json';
const HANDLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The depot directory: one subdirectory per handle, holding the container's record, its
 * overlay upper/work layers and rootfs mount point, and one directory per job.
 */
export class Depot {
  readonly root: string;
  /** The latest write of each record: writes of one record are serialized, last one wins. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  static validateHandle(handle: string): void {
    if (!HANDLE.test(handle)) {
      throw new WardenError('invalid_handle', `invalid handle ${JSON.stringify(handle)}: use 1-128 characters of A-Z a-z 0-9 . _ - (not starting with . _ or -)`);
    }
  }

  dir(handle: string): string {
    return join(this.root, handle);
  }

  jobDir(handle: string, jobId: number): string {
    return join(this.root, handle, 'jobs', String(jobId));
  }

  /** Claims the handle's directory; the mkdir is the atomic "does it exist" check. */
  async reserve(handle: string): Promise<string> {
    const dir = this.dir(handle);
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new WardenError('handle_exists', `container with handle: ${handle} already exists.`);
      throw e;
    }
    await Promise.all(['rootfs', 'upper', 'work', 'jobs'].map((d) => mkdir(join(dir, d))));
    return dir;
  }

  /**
   * The snapshot of one container, taken now and written to a temporary file then renamed:
   * a crash never leaves a torn record. Writes of one record queue behind each other, so an
   * older snapshot never lands after a newer one.
   */
  save(record: ContainerRecord): Promise<void> {
    const file = join(this.dir(record.handle), RECORD);
    const text = JSON.stringify(record);
    const previous = this.#writes.get(record.handle) ?? Promise.resolve();
    const write = previous
      .catch(() => undefined)
      .then(async () => {
        await writeFile(`${file}.tmp`, text);
        await rename(`${file}.tmp`, file);
      });
    this.#writes.set(record.handle, write);
    void write
      .finally(() => {
        if (this.#writes.get(record.handle) === write) this.#writes.delete(record.handle);
      })
      .catch(() => undefined);
    return write;
  }

  /** Resolves once every snapshot asked for so far is on disk (or failed). */
  async flush(): Promise<void> {
    await Promise.all([...this.#writes.values()].map((w) => w.catch(() => undefined)));
  }

  /** The job directories of a container, by id (what a restarted daemon adopts). */
  async jobIds(handle: string): Promise<number[]> {
    const entries = await readdir(join(this.dir(handle), 'jobs')).catch(() => [] as string[]);
    return entries
      .filter((e) => /^[1-9][0-9]*$/.test(e))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async load(handle: string): Promise<ContainerRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir(handle), RECORD), 'utf8')) as ContainerRecord;
    } catch {
      return undefined;
    }
  }

  async handles(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async remove(handle: string): Promise<void> {
    await this.#writes.get(handle)?.catch(() => undefined);
    await rm(this.dir(handle), { recursive: true, force: true, maxRetries: 3 });
  }
}
