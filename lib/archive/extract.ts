/**
 * Unpacks a zip into a directory, refusing anything that could write outside it or exhaust
 * the disk (DESIGN §9, *Phases*: unpack). Entries are written once, straight to their final
 * place; symlinks are created only after every file is written (so no write can go through
 * one), and each must resolve inside the root. A refusal is an ArchiveError; any other error
 * (I/O, or the download's own failure through the archive) comes through as it is, for the
 * caller to judge.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl, { type ZipFile } from 'yauzl';
import { type ArchiveFile, openCompleteArchive } from './archive-file.ts';
import { safeEntryPath } from './entry-names.ts';
import { fail } from './errors.ts';
import type { UnpackLimits } from './limits.ts';
import { type Link, checkLinkTarget, createLinks } from './links.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, WHOLE_FILE_BYTES, YIELD_EVERY_MS, openZip, readSmall, unixMode, writeSmallEntry } from './zip-reader.ts';

export type UnpackInput = {
  /** Must exist and be empty. */
  destDir: string;
  limits: UnpackLimits;
  signal: AbortSignal;
  /** After each file is written: entries read so far, of the archive's total. */
  onProgress?: (entriesDone: number, entriesTotal: number) => void;
} & ArchiveSource;

/** The archive, complete on disk, or still arriving (download.ts): then entries are read as their bytes land. */
type ArchiveSource = { zipPath: string; archive?: never } | { archive: ArchiveFile; zipPath?: never };

export interface UnpackStats {
  entries: number;
  files: number;
  bytes: number;
}

/** Files written concurrently: inflate runs on libuv's threads, so this keeps both cores busy. */
const PARALLEL_WRITES = 8;

export class ZipOpenError extends Error {
  override name = 'ZipOpenError';
}

export async function extractZip(input: UnpackInput): Promise<UnpackStats> {
  const { limits, destDir, signal } = input;
  let zip: ZipFile;
  let owned: ReturnType<typeof openCompleteArchive> | undefined;
  let archive: ArchiveFile;
  try {
    archive = input.archive ?? (owned = openCompleteArchive(input.zipPath));
    zip = await openZip(archive);
  } catch (err) {
    owned?.close();
    throw new ZipOpenError('the archive could not be opened', { cause: err });
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

async function extract(zip: ZipFile, archive: ArchiveFile, input: UnpackInput, destDir: string, limits: UnpackLimits, signal: AbortSignal) {
  const seen = new Set<string>();
  const madeDirs = new Set<string>(['']);
  const links: Link[] = [];
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
  if (firstError) throw firstError;
  await createLinks(destDir, links, madeDirs);
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
      if (entry.uncompressedSize > limits.ratioMinBytes && entry.uncompressedSize > limits.maxRatio * Math.max(entry.compressedSize, 1)) {
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

export /** An fs error in words a user can act on, naming the entry path, never the workspace's. */
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
