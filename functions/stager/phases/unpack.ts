/**
 * Phase 2: unpack the app archive into the droplet's app directory, refusing anything that
 * could write outside it or exhaust the disk. Entries are written once, straight to their
 * final place; symlinks are created only after every file is written (so no write can go
 * through one), and each must resolve inside the app root.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, realpath, symlink } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import type { UnpackLimits } from '../config.ts';
import { PhaseError } from '../errors.ts';

export interface UnpackInput {
  zipPath: string;
  /** Must exist and be empty. */
  destDir: string;
  limits: UnpackLimits;
  signal: AbortSignal;
  onProgress?: (entriesDone: number, entriesTotal: number) => void;
}

export interface UnpackStats {
  entries: number;
  files: number;
  bytes: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
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
  if (/end of central directory record signature not found/.test(m)) {
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

export async function unpack(input: UnpackInput): Promise<UnpackStats> {
  const { limits, destDir, signal } = input;
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(input.zipPath, {
      lazyEntries: true,
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: true,
      autoClose: false,
    });
  } catch (err) {
    throw fail(describeOpenError(err as Error));
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw fail(`the archive has ${zip.entryCount} entries, over the limit of ${limits.maxEntries}`);
    }
    return await extract(zip, input, destDir, limits, signal);
  } finally {
    zip.close();
  }
}

async function extract(zip: ZipFile, input: UnpackInput, destDir: string, limits: UnpackLimits, signal: AbortSignal) {
  const seen = new Set<string>();
  const madeDirs = new Set<string>(['']);
  const links: Array<{ path: string; target: string }> = [];
  const writes = new Set<Promise<void>>();
  let firstError: unknown;
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
    firstError ??= err;
  }
  // Let in-flight writes settle before the archive is closed under them.
  await Promise.all(writes);
  if (firstError) throw toUnpackError(firstError, signal);
  await createLinks(destDir, links);
  return stats;

  async function readEntries(): Promise<void> {
    for await (const entry of zip.eachEntry()) {
      if (firstError) break;
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
        throw fail(`entry ${rel} conflicts with another entry: ${(err as Error).message}`);
      });
      while (writes.size >= PARALLEL_WRITES) await Promise.race(writes);
      if (firstError) break;
      const fileMode = mode & 0o111 ? 0o755 : 0o644;
      const write: Promise<void> = (async () => {
        const source = await zip.openReadStreamPromise(entry);
        await pipeline(source, createWriteStream(join(destDir, rel), { flags: 'wx', mode: fileMode }), { signal });
        stats.files++;
        stats.bytes += entry.uncompressedSize;
        input.onProgress?.(stats.entries, zip.entryCount);
      })().then(
        () => void writes.delete(write),
        (err) => {
          writes.delete(write);
          firstError ??= err;
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

/** Links are made last, then each is resolved for real: a chain of links cannot leave the root. */
async function createLinks(destDir: string, links: Array<{ path: string; target: string }>): Promise<void> {
  if (links.length === 0) return;
  links.sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const { path, target } of links) {
    const at = join(destDir, path);
    await mkdir(dirname(at), { recursive: true });
    await symlink(target, at);
  }
  const root = await realpath(destDir);
  for (const { path, target } of links) {
    let real: string;
    try {
      real = await realpath(join(destDir, path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // dangling, and lexically inside
      throw fail(`symlink ${path} cannot be resolved: ${(err as Error).message}`);
    }
    if (real !== root && !real.startsWith(root + sep)) {
      throw fail(`symlink ${path} points outside the app root: ${target}`);
    }
  }
}

function toUnpackError(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : (err as Error);
  if (err instanceof PhaseError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR' || e.code === 'EISDIR') {
    return fail(`entries conflict (a file and a directory of the same name?): ${e.message}`);
  }
  if (e.code === 'ENOSPC') return fail('no space left in the staging workspace: the app is too large for this stager');
  return fail(`corrupt zip archive: ${e.message}`);
}

