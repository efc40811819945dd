/** Zips a directory tree given as {path: content} with yazl (a well-formed archive). */
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
