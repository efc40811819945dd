/**
 * Phase 4: pack the droplet directory into a reproducible .tgz: entries sorted bytewise,
 * depth first; fixed mtime; no owners (portable); modes normalised to 0755/0644 — so the same
 * input always yields the same bytes, and the same sha256.
 *
 * The tar stream is written straight into the gzip writer's blocks: headers are node-tar's
 * own (Header, Pax: the bytes its Pack writes with `portable` and a fixed `mtime`), file
 * contents are read into the block that will be deflated, and each compressed block is hashed
 * and written to the droplet file as it comes back. No per-entry streams or buffers: on a
 * 10 000-file app those cost more main-thread time than the tar format itself.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, rmSync, writeSync } from 'node:fs';
import { join, posix } from 'node:path';
import { Header, Pax } from 'tar';
import { PhaseError, classify } from '../errors.ts';
import { GzipWriter } from '../../../lib/archive/gzip.ts';

export interface PackInput {
  dropletDir: string;
  dest: string;
  gzipLevel: number;
  signal: AbortSignal;
  onProgress?: (bytesOut: number) => void;
}

export interface PackedDroplet {
  path: string;
  size: number;
  sha256: string;
  sha1: string;
  entries: number;
}

/** Every droplet entry has this mtime (DESIGN §4: fixed mtimes). */
export const DROPLET_MTIME = new Date('2000-01-01T00:00:00Z');

type EntryType = 'File' | 'Directory' | 'SymbolicLink';

interface TreeEntry {
  /** `./rel` for files and links, `./rel/` for directories: the name in the archive. */
  path: string;
  abs: string;
  type: EntryType;
  /** Mode as archived: node-tar's portable mode of the (normalised) mode on disk. */
  mode: number;
  /** Bytes of a regular file; 0 otherwise. */
  size: number;
  linkpath?: string;
}

/** node-tar's portable mode: owner can read and write, nobody else writes, readable dirs listable. */
function portableMode(mode: number, isDir: boolean): number {
  let m = ((mode & 0o7777) | 0o600) & ~0o22;
  if (isDir) m |= ((m & 0o444) >> 2) & 0o111;
  return m;
}

/** Sorts names by their UTF-8 bytes (each encoded once, not on every comparison). */
export function sortBytewise(names: string[]): string[] {
  return names
    .map((name) => ({ name, bytes: Buffer.from(name) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((n) => n.name);
}

/**
 * DESIGN §4: a droplet is self-contained and its symlinks point only inside it. Unpack already
 * holds the app's own links to that; this catches one a plugin or buildpack made while staging.
 */
function checkLinkInside(rel: string, linkpath: string): void {
  const resolved = posix.normalize(posix.join(posix.dirname(rel), linkpath));
  if (linkpath.startsWith('/') || resolved === '..' || resolved.startsWith('../')) {
    throw new PhaseError('pack', `${rel} is a symlink to ${linkpath}, outside the droplet: a droplet must be self-contained`);
  }
}

/**
 * Walks the tree depth first, children sorted bytewise, normalising modes on the way. The walk
 * is synchronous: an lstat is a few microseconds, a trip through the thread pool costs more.
 */
function walkSorted(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (rel: string) => {
    const names = sortBytewise(readdirSync(rel ? join(root, rel) : root));
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = join(root, childRel);
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) {
        const linkpath = readlinkSync(abs);
        checkLinkInside(childRel, linkpath);
        out.push({ path: `./${childRel}`, abs, type: 'SymbolicLink', mode: portableMode(st.mode, false), size: 0, linkpath });
      } else if (st.isDirectory()) {
        if ((st.mode & 0o7777) !== 0o755) chmodSync(abs, 0o755);
        out.push({ path: `./${childRel}/`, abs, type: 'Directory', mode: portableMode(0o755, true), size: 0 });
        walk(childRel);
      } else if (st.isFile()) {
        const mode = st.mode & 0o111 ? 0o755 : 0o644;
        if ((st.mode & 0o7777) !== mode) chmodSync(abs, mode);
        out.push({ path: `./${childRel}`, abs, type: 'File', mode: portableMode(mode, false), size: st.size });
      } else {
        throw new PhaseError('pack', `${childRel} is not a regular file, directory or symlink`);
      }
    }
  };
  walk('');
  return out;
}

/** The entry's header block(s), as node-tar's WriteEntry writes them in portable mode. */
function headerOf(entry: TreeEntry): Buffer {
  // Portable directories carry no mtime, as in node-tar.
  const mtime = entry.type === 'Directory' ? undefined : DROPLET_MTIME;
  const header = new Header({ path: entry.path, linkpath: entry.linkpath, mode: entry.mode, size: entry.size, mtime, type: entry.type });
  const needsPax = header.encode();
  if (!needsPax) return header.block!;
  const pax = new Pax({ path: entry.path, linkpath: entry.linkpath, size: header.size, mtime });
  return Buffer.concat([pax.encode(), header.block!]);
}

const ZEROS = Buffer.alloc(1024);

/** Reads the file's bytes into the writer's blocks, then pads the entry to 512 bytes. */
async function copyFile(entry: TreeEntry, gz: GzipWriter, signal: AbortSignal): Promise<void> {
  const fd = openSync(entry.abs, 'r');
  try {
    let pos = 0;
    while (pos < entry.size) {
      signal.throwIfAborted();
      const space = gz.space();
      const n = readSync(fd, space, 0, Math.min(space.length, entry.size - pos), pos);
      if (n === 0) throw new PhaseError('pack', `${entry.path.slice(2)} shrank while it was archived (was the app still being written?)`);
      pos += n;
      const dispatched = gz.commit(n);
      if (dispatched) await dispatched;
    }
  } finally {
    closeSync(fd);
  }
  const pad = (512 - (entry.size % 512)) % 512;
  if (pad > 0) await gz.write(ZEROS.subarray(0, pad));
}

export async function pack(input: PackInput): Promise<PackedDroplet> {
  const entries = walkSorted(input.dropletDir);
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let size = 0;
  const fd = openSync(input.dest, 'wx');
  try {
    const gz = new GzipWriter(input.gzipLevel, (buf) => {
      sha256.update(buf);
      sha1.update(buf);
      for (let at = 0; at < buf.length; ) at += writeSync(fd, buf, at);
      size += buf.length;
      input.onProgress?.(size);
    });
    for (const entry of entries) {
      input.signal.throwIfAborted();
      await gz.write(headerOf(entry));
      if (entry.type === 'File' && entry.size > 0) await copyFile(entry, gz, input.signal);
    }
    await gz.write(ZEROS); // end of archive: two zero blocks
    await gz.end();
  } catch (err) {
    rmSync(input.dest, { force: true });
    // Writing the droplet is local work: no failure of it is worth another delivery.
    throw classify(err, {
      phase: 'pack',
      signal: input.signal,
      describe: (e) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return new PhaseError('pack', 'no space left in the staging workspace for the droplet');
        return new PhaseError('pack', (e as Error).message, { cause: e });
      },
    });
  } finally {
    closeSync(fd);
  }
  return { path: input.dest, entries: entries.length, size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex') };
}
