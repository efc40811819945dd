/**
 * Reading a zip: yauzl over an ArchiveFile (complete, or still arriving), and the fast path
 * for small entries. Refusals are ArchiveErrors; I/O errors come through as they are.
 */
import { read as readAt, readSync, writeFileSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { Readable } from 'node:stream';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { ArchiveFile } from './archive-file.ts';
import { fail } from './errors.ts';

export const S_IFMT = 0o170000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;
/** The longest stretch of synchronous work before the event loop gets a turn. */
export const YIELD_EVERY_MS = 20;
/** Entries up to this size are read, inflated and written in one go (see writeSmallEntry). */
export const WHOLE_FILE_BYTES = 1024 * 1024;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;

/**
 * Small entries, the bulk of any app, are read, inflated and written synchronously: each is a
 * few microseconds of work, and a trip through the thread pool for every step (read, inflate,
 * open, write, close) cost several times the work itself. Sizes and CRC-32 are checked here,
 * and inflating stops at the declared size, so a lying entry cannot write more than it says.
 */
export function writeSmallEntry(archive: ArchiveFile, entry: Entry, rel: string, target: string, mode: number): void {
  const header = Buffer.allocUnsafe(30);
  const at = entry.relativeOffsetOfLocalHeader;
  if (readSync(archive.fd, header, 0, 30, at) !== 30 || header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
    throw fail(`corrupt zip archive: entry ${rel} has no valid local file header`);
  }
  const dataStart = at + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (dataStart + entry.compressedSize > archive.size) {
    throw fail(`corrupt zip archive: entry ${rel}'s data runs past the end of the archive`);
  }
  const raw = Buffer.allocUnsafe(entry.compressedSize);
  if (readSync(archive.fd, raw, 0, raw.length, dataStart) !== raw.length) {
    throw fail(`corrupt zip archive: entry ${rel} is cut short`);
  }
  let data = raw;
  if (entry.compressionMethod === 8) {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw fail(`corrupt zip archive: entry ${rel} inflates to more than the ${entry.uncompressedSize} bytes it declares`);
      }
      throw fail(`corrupt zip archive: entry ${rel} has corrupt compressed data (${(err as Error).message})`);
    }
  }
  if (data.length !== entry.uncompressedSize) {
    throw fail(`corrupt zip archive: entry ${rel} holds ${data.length} bytes, not the ${entry.uncompressedSize} it declares`);
  }
  if (crc32(data) >>> 0 !== entry.crc32 >>> 0) throw fail(`corrupt zip archive: entry ${rel} fails its CRC-32 check`);
  writeFileSync(target, data, { flag: 'wx', mode });
}
export function unixMode(entry: Entry): number {
  const madeOnUnix = entry.versionMadeBy >> 8 === 3;
  return madeOnUnix ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
}

/** Why yauzl could not open an archive, in the uploader's words. */
export function describeOpenError(err: Error): string {
  const m = err.message;
  if (/end of central directory record signature not found/i.test(m)) {
    return 'not a zip archive (no end-of-central-directory record): the upload is truncated or is not a zip file';
  }
  if (/multi-disk/.test(m)) return 'multi-disk (split) zip archives are not supported: upload a single-file zip';
  return `corrupt zip archive: ${m}`;
}

export async function readSmall(zip: ZipFile, entry: Entry, max: number): Promise<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) throw fail(`symlink entry "${entry.fileName}" has a target longer than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads the archive for yauzl, each entry's stream from its own file descriptor. yauzl's own
 * reader queues every read on one shared descriptor and throws an uncaught TypeError (then hangs)
 * when a stream is destroyed while its read is still queued, which parallel writes hit whenever
 * one fails or the deadline aborts them.
 */
export class ArchiveReader extends yauzl.RandomAccessReader {
  readonly archive: ArchiveFile;
  constructor(archive: ArchiveFile) {
    super();
    this.archive = archive;
  }
  override _readStreamForRange(start: number, end: number): Readable {
    // All entries read the one descriptor with positioned reads (pread): no open per entry, and
    // destroying one stream mid-read neither closes the descriptor nor disturbs the others.
    // Most entries are small: chunks sized to the entry, not 64 KiB, keep garbage down.
    const archive = this.archive;
    let position = start;
    return new Readable({
      highWaterMark: Math.max(1, Math.min(end - start, 64 * 1024)),
      read(size) {
        const n = Math.min(size, end - position);
        if (n <= 0) return void this.push(null);
        const go = () =>
          readAt(archive.fd, Buffer.allocUnsafe(n), 0, n, position, (err, bytesRead, buffer) => {
            if (err) return void this.destroy(err);
            if (bytesRead === 0) return void this.destroy(new Error('unexpected end of the archive'));
            position += bytesRead;
            this.push(bytesRead === n ? buffer : buffer.subarray(0, bytesRead));
          });
        const arriving = archive.ready(position, position + n);
        if (arriving) arriving.then(go, (err: Error) => this.destroy(err));
        else go();
      },
    });
  }
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void) {
    // yauzl reads the central directory a record at a time, two small reads per entry: done
    // synchronously (from the page cache, microseconds) instead of 20 000 thread-pool trips.
    const go = () => {
      let err: Error | null = null;
      try {
        if (readSync(this.archive.fd, buffer, offset, length, position) < length) err = new Error('unexpected EOF');
      } catch (e) {
        err = e as Error;
      }
      return err;
    };
    const arriving = this.archive.ready(position, position + length);
    if (arriving) arriving.then(() => callback(go()), callback);
    else process.nextTick(callback, go());
  }
  override close(callback: (err: Error | null) => void) {
    callback(null); // the descriptor belongs to whoever opened the archive
  }
}

/** Opens a zip for reading entry by entry; an archive that cannot be opened throws as yauzl says (see describeOpenError). */
export function openZip(archive: ArchiveFile): Promise<ZipFile> {
  return yauzl.fromRandomAccessReaderPromise(new ArchiveReader(archive), archive.size, {
    lazyEntries: true,
    decodeStrings: false,
    validateEntrySizes: true,
    strictFileNames: true,
    autoClose: false,
  });
}
