/**
 * Phase 2: unpack the app archive into the droplet's app directory, refusing anything that
 * could write outside it or exhaust the disk. Entries are written once, straight to their
 * final place; symlinks are created only after every file is written (so no write can go
 * through one), and each must resolve inside the app root.
 */
import { createWriteStream, read as readAt, readSync, writeFileSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { lstat, mkdir, readlink, realpath, symlink } from 'node:fs/promises';
import { dirname, join, posix, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { UnpackLimits } from '../config.ts';
import { PhaseError, RetryableError, classify } from '../errors.ts';
import { type ArchiveFile, openCompleteArchive } from './archive-file.ts';

export type UnpackInput = {
  /** Must exist and be empty. */
  destDir: string;
  limits: UnpackLimits;
  signal: AbortSignal;
  /** After each file is written: entries read so far, of the archive's total. */
  onProgress?: (entriesDone: number, entriesTotal: number) => void;
} & (
  /** The archive, complete on disk … */
  | { zipPath: string; archive?: never }
  /** … or still arriving (download.ts): entries are read as their bytes land. */
  | { archive: ArchiveFile; zipPath?: never }
);

export interface UnpackStats {
  entries: number;
  files: number;
  bytes: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/** The longest stretch of synchronous work before the event loop gets a turn. */
const YIELD_EVERY_MS = 20;
/** Entries up to this size are read, inflated and written in one go (see writeSmallEntry). */
const WHOLE_FILE_BYTES = 1024 * 1024;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;

/**
 * Small entries, the bulk of any app, are read, inflated and written synchronously: each is a
 * few microseconds of work, and a trip through the thread pool for every step (read, inflate,
 * open, write, close) cost several times the work itself. Sizes and CRC-32 are checked here,
 * and inflating stops at the declared size, so a lying entry cannot write more than it says.
 */
function writeSmallEntry(archive: ArchiveFile, entry: Entry, rel: string, target: string, mode: number): void {
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
/** Files written concurrently: inflate runs on libuv's threads, so this keeps both cores busy. */
const PARALLEL_WRITES = 8;

const fail = (reason: string) => new PhaseError('unpack', reason);

/** Turns an entry name into a safe relative path, or says precisely why it is not one. */
export function safeEntryPath(name: string, limits: Pick<UnpackLimits, 'maxPathBytes' | 'maxNameBytes'>): string {
  const shown = JSON.stringify(name);
  if (name.length === 0) throw fail('an entry has an empty name');
  if (name.includes('\0')) throw fail(`entry ${shown} has a NUL byte in its name`);
  if (Buffer.byteLength(name) > limits.maxPathBytes) {
    throw fail(`entry name is longer than ${limits.maxPathBytes} bytes: ${shown.slice(0, 80)}…`);
  }
  if (name.includes('\\')) throw fail(`entry ${shown} contains a backslash: zip entry names must use "/"`);
  if (/^[A-Za-z]:/.test(name)) throw fail(`entry ${shown} has a drive letter: entries must be relative paths`);
  if (name.startsWith('/')) throw fail(`entry ${shown} is an absolute path: entries must be relative paths`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw fail(`entry escapes the app root: ${name}`);
  for (const p of parts) {
    if (Buffer.byteLength(p) > limits.maxNameBytes) {
      throw fail(`entry ${shown} has a path component longer than ${limits.maxNameBytes} bytes`);
    }
  }
  return parts.join('/');
}

function unixMode(entry: Entry): number {
  const madeOnUnix = entry.versionMadeBy >> 8 === 3;
  return madeOnUnix ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
}

function describeOpenError(err: Error): string {
  const m = err.message;
  if (/end of central directory record signature not found/i.test(m)) {
    return 'not a zip archive (no end-of-central-directory record): the upload is truncated or is not a zip file';
  }
  if (/multi-disk/.test(m)) return 'multi-disk (split) zip archives are not supported: upload a single-file zip';
  return `corrupt zip archive: ${m}`;
}

async function readSmall(zip: ZipFile, entry: Entry, max: number): Promise<Buffer> {
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
class ArchiveReader extends yauzl.RandomAccessReader {
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

export async function unpack(input: UnpackInput): Promise<UnpackStats> {
  const { limits, destDir, signal } = input;
  let zip: ZipFile;
  let owned: ReturnType<typeof openCompleteArchive> | undefined;
  let archive: ArchiveFile;
  try {
    archive = input.archive ?? (owned = openCompleteArchive(input.zipPath));
    zip = await yauzl.fromRandomAccessReaderPromise(new ArchiveReader(archive), archive.size, {
      lazyEntries: true,
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: true,
      autoClose: false,
    });
  } catch (err) {
    owned?.close();
    // A download's own failure comes through as it is; anything else is the archive's.
    throw classify(err, { phase: 'unpack', describe: (e) => fail(describeOpenError(e as Error)) });
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw fail(`the archive has ${zip.entryCount} entries, over the limit of ${limits.maxEntries}`);
    }
    return await extract(zip, archive, input, destDir, limits, signal);
  } finally {
    zip.close();
    owned?.close();
  }
}

async function extract(
  zip: ZipFile,
  archive: ArchiveFile,
  input: UnpackInput,
  destDir: string,
  limits: UnpackLimits,
  signal: AbortSignal,
) {
  const seen = new Set<string>();
  const madeDirs = new Set<string>(['']);
  const links: Array<{ path: string; target: string }> = [];
  const writes = new Set<Promise<void>>();
  // One failure ends the unpack: large writes still under way are cut short, not finished.
  const stopWrites = new AbortController();
  const writeSignal = AbortSignal.any([signal, stopWrites.signal]);
  let firstError: unknown;
  const failed = (err: unknown) => {
    firstError ??= err;
    stopWrites.abort();
  };
  let declaredTotal = 0;
  const stats: UnpackStats = { entries: 0, files: 0, bytes: 0 };

  const ensureDir = async (rel: string) => {
    if (madeDirs.has(rel)) return;
    await mkdir(join(destDir, rel), { recursive: true });
    for (let d = rel; d && !madeDirs.has(d); d = posix.dirname(d) === '.' ? '' : posix.dirname(d)) madeDirs.add(d);
  };

  try {
    await readEntries();
  } catch (err) {
    failed(err);
  }
  // Let in-flight writes settle before the archive is closed under them.
  await Promise.all(writes);
  if (firstError) throw toUnpackError(firstError, signal, destDir);
  try {
    await createLinks(destDir, links, madeDirs);
  } catch (err) {
    throw toUnpackError(err, signal, destDir);
  }
  return stats;

  async function readEntries(): Promise<void> {
    let lastYield = performance.now();
    for await (const entry of zip.eachEntry()) {
      if (firstError) break;
      // Reads and small writes are synchronous: every few milliseconds, let timers (the
      // deadline, lease renewals, heartbeats) and other I/O run.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
      signal.throwIfAborted();
      stats.entries++;
      const rawName = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
      (entry as { fileName: string }).fileName = rawName;
      const rel = safeEntryPath(rawName, limits);
      if (rel === '') continue;
      if (seen.has(rel)) throw fail(`duplicate entry: ${rel} appears more than once in the archive`);
      seen.add(rel);
      if (entry.isEncrypted()) throw fail(`entry ${rel} is encrypted: upload an archive without a password`);
      if (!entry.canDecodeFileData()) {
        throw fail(`entry ${rel} uses compression method ${entry.compressionMethod}: only stored and deflate are supported`);
      }
      declaredTotal += entry.uncompressedSize;
      if (declaredTotal > limits.maxTotalBytes) {
        throw fail(`the archive unpacks to more than ${limits.maxTotalBytes} bytes (the limit)`);
      }
      if (
        entry.uncompressedSize > limits.ratioMinBytes &&
        entry.uncompressedSize > limits.maxRatio * Math.max(entry.compressedSize, 1)
      ) {
        throw fail(
          `entry ${rel} expands ${Math.round(entry.uncompressedSize / Math.max(entry.compressedSize, 1))}:1, ` +
            `over the compression ratio limit of ${limits.maxRatio}:1 (a zip bomb?)`,
        );
      }
      const mode = unixMode(entry);
      const isDir = rawName.endsWith('/') || (mode & S_IFMT) === S_IFDIR;
      if (isDir) {
        await ensureDir(rel);
        continue;
      }
      if ((mode & S_IFMT) === S_IFLNK) {
        const target = (await readSmall(zip, entry, limits.maxPathBytes)).toString('utf8');
        checkLinkTarget(rel, target);
        links.push({ path: rel, target });
        continue;
      }
      const parent = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
      await ensureDir(parent).catch((err) => {
        throw fail(`entry ${rel} conflicts with another entry: ${describeFsError(err, destDir)}`);
      });
      while (writes.size >= PARALLEL_WRITES) await Promise.race(writes);
      if (firstError) break;
      const fileMode = mode & 0o111 ? 0o755 : 0o644;
      const target = join(destDir, rel);
      if (entry.uncompressedSize <= WHOLE_FILE_BYTES) {
        // The local header's name and extra field may differ in length from the central ones.
        const at = entry.relativeOffsetOfLocalHeader;
        const arriving = archive.ready(at, Math.min(archive.size, at + 30 + 0xffff * 2 + entry.compressedSize));
        if (arriving) await arriving;
        writeSmallEntry(archive, entry, rel, target, fileMode);
        stats.files++;
        stats.bytes += entry.uncompressedSize;
        input.onProgress?.(stats.entries, zip.entryCount);
        continue;
      }
      const write: Promise<void> = (async () => {
        const source = await zip.openReadStreamPromise(entry);
        await pipeline(source, createWriteStream(target, { flags: 'wx', mode: fileMode }), { signal: writeSignal });
        stats.files++;
        stats.bytes += entry.uncompressedSize;
        input.onProgress?.(stats.entries, zip.entryCount);
      })().then(
        () => void writes.delete(write),
        (err) => {
          writes.delete(write);
          failed(err);
        },
      );
      writes.add(write);
    }
  }
}

function checkLinkTarget(rel: string, target: string): void {
  if (target === '' || target.includes('\0')) throw fail(`symlink ${rel} has an empty or invalid target`);
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target) || target.includes('\\')) {
    throw fail(`symlink ${rel} points outside the app root: ${target}`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../')) throw fail(`symlink ${rel} points outside the app root: ${target}`);
}

/**
 * Links are made last, then each is resolved for real: a chain of links cannot leave the root.
 * No link is made inside another link, nor where an entry made a directory, so nothing is ever
 * created through one.
 */
async function createLinks(destDir: string, links: Array<{ path: string; target: string }>, madeDirs: Set<string>) {
  if (links.length === 0) return;
  links.sort((a, b) => (a.path < b.path ? -1 : 1));
  const linkPaths = new Set(links.map((l) => l.path));
  for (const { path } of links) {
    if (madeDirs.has(path)) throw fail(`symlink ${path} conflicts with entries inside it: nothing may be unpacked through a symlink`);
    for (let d = posix.dirname(path); d !== '.'; d = posix.dirname(d)) {
      if (linkPaths.has(d)) throw fail(`symlink ${path} lies inside symlink ${d}: nothing may be unpacked through a symlink`);
    }
  }
  for (const { path, target } of links) {
    const at = join(destDir, path);
    await mkdir(dirname(at), { recursive: true });
    await symlink(target, at);
  }
  const root = await realpath(destDir);
  for (const { path, target } of links) {
    const hops = { left: 40 };
    const real = await physicalPath(join(root, posix.dirname(path)), target, hops);
    if (hops.left < 0) throw fail(`symlink ${path} cannot be resolved: too many levels of symbolic links`);
    if (real !== root && !real.startsWith(root + sep)) {
      throw fail(`symlink ${path} points outside the app root: ${target}`);
    }
  }
}

/**
 * Where `target`, read from a link in the real (link-free) directory `from`, leads: each part
 * resolved as the kernel would, following links (so `link/..` is the parent of where the link
 * points, not `.`); a part that does not exist is taken as the directory someone may create.
 * Unlike realpath this also places dangling links, which a later writer would follow.
 */
async function physicalPath(from: string, target: string, hops: { left: number }): Promise<string> {
  let at = target.startsWith('/') ? '/' : from;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      at = dirname(at);
      continue;
    }
    const next = join(at, part);
    const st = await lstat(next).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw err;
    });
    if (st?.isSymbolicLink()) {
      if (--hops.left < 0) return at;
      at = await physicalPath(at, await readlink(next), hops);
    } else {
      at = next;
    }
  }
  return at;
}

/** An fs error in words a user can act on, naming the entry path, never the workspace's. */
function describeFsError(err: unknown, destDir: string): string {
  const e = err as NodeJS.ErrnoException;
  const where = e.path ? relative(destDir, e.path) || '.' : 'an entry';
  const what: Record<string, string> = {
    EEXIST: `${where} already exists`,
    ENOTDIR: `a file stands where ${where} needs a directory`,
    EISDIR: `${where} is a directory`,
  };
  return (e.code && what[e.code]) ?? `${e.code ?? 'error'} on ${where}`;
}

function toUnpackError(err: unknown, signal: AbortSignal, destDir: string): Error {
  return classify(err, { phase: 'unpack', signal, describe: (e) => describeUnpackFailure(e as NodeJS.ErrnoException, destDir) });
}

/** Unpack's own words for what went wrong writing the app (every failure here has some). */
function describeUnpackFailure(e: NodeJS.ErrnoException, destDir: string): Error {
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR' || e.code === 'EISDIR') {
    return fail(`entries conflict (a file and a directory of the same name?): ${describeFsError(e, destDir)}`);
  }
  if (e.code === 'ENOSPC') return fail('no space left in the staging workspace: the app is too large for this stager');
  // Out of descriptors, an I/O error: the stager's trouble, worth another try; never blame the archive.
  if (e.code === 'EMFILE' || e.code === 'ENFILE' || e.code === 'EIO' || e.code === 'EAGAIN') {
    return new RetryableError(`unpacking: ${describeFsError(e, destDir)}`);
  }
  if (e.code) return fail(`could not write the app: ${describeFsError(e, destDir)}`);
  return fail(`corrupt zip archive: ${e.message}`);
}

