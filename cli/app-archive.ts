/**
 * What `stage`/`push` send: a directory zipped on the fly (entries sorted, modes and symlinks
 * kept, `.git` left out), or a .zip/.war sent as it is.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import yazl from 'yazl';
import { UsageError } from './errors.ts';

export interface AppArchive {
  stream: Readable;
  /** Known for a file; unknown for a directory zipped on the fly. */
  size?: number;
  kind: 'zip' | 'war';
}

const SKIP = new Set(['.git']);
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');

async function addTree(zip: yazl.ZipFile, root: string, rel: string): Promise<void> {
  const names = (await readdir(rel ? join(root, rel) : root)).sort();
  for (const name of names) {
    if (!rel && SKIP.has(name)) continue;
    const childRel = rel ? `${rel}/${name}` : name;
    const abs = join(root, childRel);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) {
      zip.addBuffer(Buffer.from(await readlink(abs)), childRel, { mode: 0o120777, mtime: FIXED_MTIME, compress: false });
    } else if (st.isDirectory()) {
      zip.addEmptyDirectory(childRel, { mode: 0o40755, mtime: FIXED_MTIME });
      await addTree(zip, root, childRel);
    } else if (st.isFile()) {
      zip.addReadStreamLazy(childRel, { mode: st.mode & 0o111 ? 0o100755 : 0o100644, mtime: FIXED_MTIME, size: st.size }, (cb) => cb(null, createReadStream(abs)));
    }
  }
}

export async function openAppArchive(path: string): Promise<AppArchive> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new UsageError(`${path} does not exist: give an app directory, a .zip or a .war`);
  }
  if (st.isFile()) {
    const kind = /\.war$/i.test(path) ? 'war' : /\.(zip|jar)$/i.test(path) ? 'zip' : undefined;
    if (!kind) throw new UsageError(`${path} is a file but not a .zip or .war: give an app directory, a .zip or a .war`);
    return { stream: createReadStream(path), size: st.size, kind };
  }
  if (!st.isDirectory()) throw new UsageError(`${path} is neither a directory nor a file`);
  const zip = new yazl.ZipFile();
  const stream = zip.outputStream as Readable;
  addTree(zip, path, '').then(
    () => zip.end(),
    (err) => stream.destroy(err as Error),
  );
  return { stream, kind: 'zip' };
}
