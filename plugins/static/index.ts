/**
 * static: a site with an index.html at its root, served by a small server written into the
 * droplet (`support/static_server.py`, Python's standard library: the run host needs python3).
 */
import { join } from 'node:path';
import { detectMarker, exists, writeSupportFile } from '../api/files.ts';
import { type Plugin, PluginError } from '../api/types.ts';
import { STATIC_SERVER, STATIC_SERVER_FILE } from './server.ts';

export const staticSite: Plugin = {
  name: 'static',
  version: '1.0.0',
  aliases: ['staticfile'],
  detect: ({ dir }) => detectMarker(dir, 'index.html'),
  async stage(ctx) {
    if (!(await exists(join(ctx.dir, 'index.html'))) && !ctx.startCommand) {
      throw new PluginError('a static site needs an index.html at its root');
    }
    const server = await writeSupportFile(ctx.dropletDir, STATIC_SERVER_FILE, STATIC_SERVER);
    return { startCommand: `python3 ${server}`, runtime: 'python3', environment: { PYTHONUNBUFFERED: '1' } };
  },
};
