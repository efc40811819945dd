import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { WardenError } from '../../server/service.ts';
import { HostError } from '../errors.ts';

/** Small synchronous cgroupfs accessors: these are kernel files, read and written in microseconds. */
export function readCgroupFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new HostError(`reading ${path}`, (e as Error).message);
  }
}

/** `onError` may throw something better for an errno it knows (e.g. EBUSY of a memory limit). */
export function writeCgroupFile(path: string, value: string, onError?: (code: string | undefined) => void): void {
  try {
    writeFileSync(path, value);
  } catch (e) {
    onError?.((e as NodeJS.ErrnoException).code);
    throw new HostError(`writing ${JSON.stringify(value)} to ${path}`, (e as Error).message);
  }
}

/** A memory limit below what the container uses and the kernel could not reclaim: the client's to fix. */
export function memoryLimitBelowUsage(limit: number, usage: number): WardenError {
  return new WardenError(
    'limit_below_usage',
    `memory limit ${limit} is below the container's current usage of ${usage} bytes, and the kernel could not ` +
      `reclaim enough to fit; stop some of the container's processes (or free their memory) and try again, ` +
      `or set a limit of at least ${usage} bytes`,
  );
}

export function readPids(procsFile: string): number[] {
  let text: string;
  try {
    text = readFileSync(procsFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map(Number);
}

export function mkdirCgroup(path: string): void {
  mkdirSync(path, { recursive: true });
}

/** rmdir of a cgroup; ENOENT counts as done. */
export function rmdirCgroup(path: string): void {
  try {
    rmdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new HostError(`removing cgroup ${path}`, (e as Error).message);
  }
}

/** Undoes a create that failed part way; the original error is the one worth reporting. */
export function removeQuietly(cgroup: { remove(): void }): void {
  try {
    cgroup.remove();
  } catch {
    // still busy or already gone: start() cleans a cgroup without a depot directory
  }
}

export function listDirs(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}
