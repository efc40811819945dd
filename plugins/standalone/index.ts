/** standalone: any app with an explicit start command (`properties.meta.command`). */
import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Plugin, PluginError } from '../api/types.ts';

async function makeExecutable(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeExecutable(path);
    else if (entry.isFile()) await chmod(path, 0o755);
  }
}

export const standalone: Plugin = {
  name: 'standalone',
  version: '1.0.0',
  async detect({ properties }) {
    return properties.meta?.command
      ? { matched: true, reason: `a start command was given: ${properties.meta.command}` }
      : { matched: false, reason: 'no start command (properties.meta.command) was given' };
  },
  async stage(ctx) {
    const command = ctx.properties.meta?.command;
    if (!command) {
      throw new PluginError(
        'standalone apps need a start command: set properties.meta.command (e.g. "python3 app.py")',
      );
    }
    // Standalone apps are run as they are: scripts and binaries alike must be executable.
    await makeExecutable(ctx.dir);
    const runtime = ctx.properties.runtime_info?.name ?? ctx.properties.runtime;
    const environment: Record<string, string> = {};
    if (runtime?.startsWith('python') || /\bpython3?\b/.test(command)) environment.PYTHONUNBUFFERED = '1';
    ctx.log(`Start command: ${command}`);
    return { startCommand: command, runtime, environment };
  },
};
