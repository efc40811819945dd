/**
 * Symlinks in an archive: each target checked by name when it is read, and the links made
 * only after every file is written, then resolved for real, so none leads out of the root.
 */
import { lstat, mkdir, readlink, realpath, symlink } from 'node:fs/promises';
import { dirname, join, posix, sep } from 'node:path';
import { fail } from './errors.ts';

export interface Link {
  path: string;
  target: string;
}

/** Refuses a link whose target, read as a name, is empty or leaves the root. */
export function checkLinkTarget(rel: string, target: string): void {
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
export async function createLinks(destDir: string, links: Link[], madeDirs: Set<string>) {
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
