/** Small file helpers the plugins share (plugins never import one another). */
import { chmodSync, readdirSync } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Detection } from './types.ts';

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The first of `names` that exists in `dir`, or undefined. */
export async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) if (await exists(join(dir, name))) return name;
  return undefined;
}

/** A plugin that detects an app by one marker file at its root (index.php, index.html). */
export async function detectMarker(dir: string, name: string): Promise<Detection> {
  return (await exists(join(dir, name))) ? { matched: true, reason: `${name} found` } : { matched: false, reason: `no ${name}` };
}

/**
 * Writes a file the start command runs (a bundled server, a router) into the droplet's
 * `support/`; returns its path as the start command names it (`startup` sets HOME to the droplet).
 */
export async function writeSupportFile(dropletDir: string, name: string, text: string): Promise<string> {
  const dir = join(dropletDir, 'support');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), text);
  return `"$HOME/support/${name}"`;
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Makes every regular file under `dir` executable (standalone apps run scripts and binaries
 * as they are). Synchronous on purpose: for 10 000 files, a chmod each through the thread
 * pool costs several times the syscalls themselves.
 */
export async function makeExecutable(dir: string): Promise<void> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeExecutable(path);
    else if (entry.isFile()) chmodSync(path, 0o755);
  }
}
