/** Small file helpers the plugins share (plugins never import one another). */
import { access, chmod, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

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

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Makes every regular file under `dir` executable (standalone apps run scripts and binaries as they are). */
export async function makeExecutable(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeExecutable(path);
    else if (entry.isFile()) await chmod(path, 0o755);
  }
}
