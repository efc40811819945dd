/**
 * A file read while it is still being written: pack writes the droplet, and the upload reads
 * each byte once it has landed, so the two overlap. The file, not memory, absorbs the
 * difference in their speeds: nothing waits on the slower side and nothing piles up in RAM.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';

/** lib-storage joins chunks until they exceed a part: small chunks keep each part's buffer close to its size. */
const CHUNK_BYTES = 256 * 1024;

export class GrowingFile {
  readonly path: string;
  private written = 0;
  private finished = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** The writer has put `size` bytes in the file, from the start. */
  grew(size: number): void {
    this.written = size;
    this.notify();
  }

  /** The writer is done: the file is whole. */
  finish(): void {
    this.finished = true;
    this.notify();
  }

  /** The writer failed: the reader ends with this error. */
  fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  /** The file's bytes in order, each as soon as it has been written; ends when the writer finishes. */
  reader(): Readable {
    let fd: number | undefined;
    let position = 0;
    const file = this;
    return new Readable({
      highWaterMark: CHUNK_BYTES,
      read(size) {
        if (file.failure) return void this.destroy(file.failure);
        if (position < file.written) {
          try {
            // The file is opened once its first bytes exist (the writer creates it). Read
            // synchronously: the bytes were just written (page cache), and the thread pool is
            // busy deflating the next blocks.
            fd ??= openSync(file.path, 'r');
            const chunk = Buffer.allocUnsafe(Math.min(size, CHUNK_BYTES, file.written - position));
            const n = readSync(fd, chunk, 0, chunk.length, position);
            position += n;
            this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
          } catch (err) {
            this.destroy(err as Error);
          }
          return;
        }
        if (file.finished) return void this.push(null);
        file.wake = () => this._read(size);
      },
      destroy(err, callback) {
        if (fd !== undefined) closeSync(fd);
        fd = undefined;
        file.wake = undefined;
        callback(err);
      },
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
