/**
 * The app archive as unpack reads it: a file descriptor, its size, and `ready(start, end)`,
 * which says when a byte range can be read. A finished file is ready everywhere; a file still
 * being downloaded (functions/stager/phases/download.ts) is ready where its bytes have arrived, so unpacking can
 * start on the first entries while the rest is still on the wire.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';

export interface ArchiveFile {
  fd: number;
  size: number;
  /** Resolves once [start, end) can be read; undefined when it already can. Rejects if the download failed. */
  ready(start: number, end: number): Promise<void> | undefined;
}

/** An archive already on disk, complete. */
export function openCompleteArchive(path: string): ArchiveFile & { close(): void } {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  return { fd, size, ready: () => undefined, close: () => closeSync(fd) };
}

/**
 * A file filled from two ends: the tail (which holds the zip's central directory) first, then
 * the body from the start, in order. [0, front) and [tailStart, size) have arrived.
 */
export class ArrivingArchive implements ArchiveFile {
  readonly fd: number;
  readonly size: number;
  private tailStart: number;
  private front = 0;
  private failure: Error | undefined;
  private waiters: Array<{ start: number; end: number; resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(fd: number, size: number) {
    this.fd = fd;
    this.size = size;
    this.tailStart = size;
  }

  /** The tail [start, size) is on disk. */
  tailArrived(start: number): void {
    this.tailStart = Math.min(this.tailStart, start);
    this.wake();
  }

  /** Bytes [0, front) are on disk. */
  frontArrived(front: number): void {
    this.front = front;
    this.wake();
  }

  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters) w.reject(this.failure);
    this.waiters = [];
  }

  ready(start: number, end: number): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.has(start, end)) return undefined;
    return new Promise((resolve, reject) => this.waiters.push({ start, end, resolve, reject }));
  }

  private has(start: number, end: number): boolean {
    return end <= this.front || start >= this.tailStart || this.front >= this.tailStart;
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (this.has(w.start, w.end)) w.resolve();
      else this.waiters.push(w);
    }
  }
}
