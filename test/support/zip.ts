/** Zips a directory tree given as {path: content} with yazl (a well-formed archive). */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import yazl from 'yazl';

export type Tree = Record<string, string | Buffer | { content: string | Buffer; mode?: number } | { symlink: string }>;

export async function zipTree(tree: Tree): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [path, v] of Object.entries(tree)) {
    if (typeof v === 'string' || Buffer.isBuffer(v)) zip.addBuffer(Buffer.from(v), path, { mode: 0o100644 });
    else if ('symlink' in v) zip.addBuffer(Buffer.from(v.symlink), path, { mode: 0o120777 });
    else zip.addBuffer(Buffer.from(v.content), path, { mode: 0o100000 | (v.mode ?? 0o644) });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A directory's regular files as a Tree (for zipping a fixture app). */
export function treeOf(dir: string): Tree {
  const tree: Tree = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else tree[relative(dir, p)] = readFileSync(p);
    }
  };
  walk(dir);
  return tree;
}
