/**
 * Phase 4: pack the droplet directory into a reproducible .tgz: entries sorted bytewise,
 * depth first; fixed mtime; no owners (portable); modes normalised to 0755/0644 — so the same
 * input always yields the same bytes, and the same sha256. The archive is hashed as it is
 * written, so no second read is needed; tar creation, the gzip blocks (on every core, see
 * gzip.ts), hashing and the file write all overlap in one pipeline.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as createTar } from 'tar';
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

/** Lists the tree depth first, children sorted bytewise, normalising modes on the way. */
export async function listSorted(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const names = await readdir(rel ? join(root, rel) : root);
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = join(root, childRel);
      const st = await lstat(abs);
      if (st.isSymbolicLink()) {
        out.push(`./${childRel}`);
      } else if (st.isDirectory()) {
        if ((st.mode & 0o7777) !== 0o755) await chmod(abs, 0o755);
        out.push(`./${childRel}/`);
        await walk(childRel);
      } else if (st.isFile()) {
        const mode = st.mode & 0o111 ? 0o755 : 0o644;
        if ((st.mode & 0o7777) !== mode) await chmod(abs, mode);
        out.push(`./${childRel}`);
      } else {
        throw new PhaseError('pack', `${childRel} is not a regular file, directory or symlink`);
      }
    }
  };
  await walk('');
  return out;
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
  const entries = await listSorted(input.dropletDir);
  const tar = createTar(
    {
      cwd: input.dropletDir,
      portable: true,
      noDirRecurse: true,
      mtime: DROPLET_MTIME,
      strict: true,
      // node-tar reads a whole file (up to 16 MiB) per read by default; 1 MiB reads keep the
      // stager's peak RSS down (measured: -40 MiB on a 100 MiB app) at no cost in speed.
      maxReadSize: 1024 * 1024,
    },
    entries,
  );
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
