import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WardenError, type BindMount } from '../server/service.ts';

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
  createdAt: number;
}

const RECORD = 'container.json';
const HANDLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The depot directory: one subdirectory per handle, holding the container's record, its
 * overlay upper/work layers and rootfs mount point, and one directory per job.
 */
export class Depot {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  static validateHandle(handle: string): void {
    if (!HANDLE.test(handle)) {
      throw new WardenError(`invalid handle ${JSON.stringify(handle)}: use 1-128 characters of A-Z a-z 0-9 . _ - (not starting with . _ or -)`);
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
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new WardenError(`container with handle: ${handle} already exists.`);
      throw e;
    }
    await Promise.all(['rootfs', 'upper', 'work', 'jobs'].map((d) => mkdir(join(dir, d))));
    return dir;
  }

  /** Written to a temporary file and renamed: a crash never leaves a torn record. */
  async save(record: ContainerRecord): Promise<void> {
    const file = join(this.dir(record.handle), RECORD);
    await writeFile(`${file}.tmp`, JSON.stringify(record));
    await rename(`${file}.tmp`, file);
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
    await rm(this.dir(handle), { recursive: true, force: true, maxRetries: 3 });
  }
}
