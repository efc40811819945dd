/**
 * static: a site with an index.html at its root, served by a small server written into the
 * droplet (`support/static_server.py`, Python's standard library: the run host needs python3).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../api/files.ts';
import { type Plugin, PluginError } from '../api/types.ts';
import { STATIC_SERVER, STATIC_SERVER_FILE } from './server.ts';

export const staticSite: Plugin = {
  name: 'static',
  version: '1.0.0',
  aliases: ['staticfile'],
  async detect({ dir }) {
    return (await exists(join(dir, 'index.html')))
      ? { matched: true, reason: 'index.html found' }
      : { matched: false, reason: 'no index.html' };
  },
  async stage(ctx) {
    if (!(await exists(join(ctx.dir, 'index.html'))) && !ctx.startCommand) {
      throw new PluginError('a static site needs an index.html at its root');
    }
    const support = join(ctx.dropletDir, 'support');
    await mkdir(support, { recursive: true });
    await writeFile(join(support, STATIC_SERVER_FILE), STATIC_SERVER);
    return { startCommand: `python3 "$HOME/support/${STATIC_SERVER_FILE}"`, runtime: 'python3', environment: { PYTHONUNBUFFERED: '1' } };
  },
};
