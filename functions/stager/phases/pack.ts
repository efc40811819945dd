/**
 * Phase 4: pack the droplet directory into a reproducible .tgz: entries sorted bytewise,
 * depth first; fixed mtime; no owners (portable); modes normalised to 0755/0644 — so the same
 * input always yields the same bytes, and the same sha256. The archive is hashed as it is
 * written, so no second read is needed; tar creation, the gzip blocks (on every core, see
 * gzip.ts), hashing and the file write all overlap in one pipeline.
 */
import { createHash } from 'node:crypto';
import { chmodSync, createWriteStream, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WriteEntry, WriteEntrySync } from 'tar';
import { PhaseError } from '../errors.ts';
import { gzipStream } from './gzip.ts';

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

interface TreeEntry {
  /** `./rel` for files and links, `./rel/` for directories: the name in the archive. */
  path: string;
  /** Bytes of a regular file; 0 otherwise. */
  size: number;
}

/**
 * Walks the tree depth first, children sorted bytewise, normalising modes on the way. The walk
 * is synchronous: an lstat is a few microseconds, a trip through the thread pool costs more.
 */
function walkSorted(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (rel: string) => {
    const names = readdirSync(rel ? join(root, rel) : root);
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = join(root, childRel);
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) {
        out.push({ path: `./${childRel}`, size: 0 });
      } else if (st.isDirectory()) {
        if ((st.mode & 0o7777) !== 0o755) chmodSync(abs, 0o755);
        out.push({ path: `./${childRel}/`, size: 0 });
        walk(childRel);
      } else if (st.isFile()) {
        const mode = st.mode & 0o111 ? 0o755 : 0o644;
        if ((st.mode & 0o7777) !== mode) chmodSync(abs, mode);
        out.push({ path: `./${childRel}`, size: st.size });
      } else {
        throw new PhaseError('pack', `${childRel} is not a regular file, directory or symlink`);
      }
    }
  };
  walk('');
  return out;
}

/** Entries up to this size are archived synchronously, in batches; larger ones stream. */
const SMALL_ENTRY_BYTES = 1024 * 1024;
const BATCH_BYTES = 1024 * 1024;

/**
 * The tar stream, built entry by entry with node-tar's own entry writers: small entries
 * (nearly all of an app) synchronously and gathered into ~1 MiB batches, large files as
 * streams, so memory stays bounded whatever the file sizes. The bytes are exactly what
 * node-tar's Pack writes for the same list and options.
 */
async function* tarChunks(root: string, entries: TreeEntry[], signal: AbortSignal): AsyncGenerator<Buffer> {
  const options = { cwd: root, portable: true, mtime: DROPLET_MTIME, strict: true, maxReadSize: SMALL_ENTRY_BYTES };
  let batch: Buffer[] = [];
  let batched = 0;
  for (const entry of entries) {
    signal.throwIfAborted();
    if (entry.size <= SMALL_ENTRY_BYTES) {
      const writer = new WriteEntrySync(entry.path, options);
      writer.on('data', (chunk: Buffer) => {
        batch.push(chunk);
        batched += chunk.length;
      });
      if (batched < BATCH_BYTES) continue;
    }
    if (batched > 0) {
      yield batch.length === 1 ? batch[0] : Buffer.concat(batch, batched);
      batch = [];
      batched = 0;
    }
    if (entry.size > SMALL_ENTRY_BYTES) {
      for await (const chunk of new WriteEntry(entry.path, options)) yield chunk as Buffer;
    }
  }
  batch.push(Buffer.alloc(1024)); // end of archive: two zero blocks
  yield Buffer.concat(batch);
}

function hashing(onProgress?: (n: number) => void) {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sha256.update(chunk);
      sha1.update(chunk);
      size += chunk.length;
      onProgress?.(size);
      done(null, chunk);
    },
  });
  return { stream, digest: () => ({ size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex') }) };
}

export async function pack(input: PackInput): Promise<PackedDroplet> {
  const entries = walkSorted(input.dropletDir);
  const tar = Readable.from(tarChunks(input.dropletDir, entries, input.signal), { objectMode: false });
  const hash = hashing(input.onProgress);
  try {
    await pipeline(tar, gzipStream(input.gzipLevel), hash.stream, createWriteStream(input.dest, { flags: 'wx' }), {
      signal: input.signal,
    });
  } catch (err) {
    if (input.signal.aborted) throw input.signal.reason ?? err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new PhaseError('pack', 'no space left in the staging workspace for the droplet');
    throw new PhaseError('pack', e.message, { cause: err });
  }
  return { path: input.dest, entries: entries.length, ...hash.digest() };
}
