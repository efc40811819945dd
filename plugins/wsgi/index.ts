/**
 * wsgi (python): `wsgi.py` or `app.py` with an `application` callable, served by a small
 * wsgiref server written into the droplet (`support/wsgi_server.py`); or, for plain scripts,
 * any Python app whose Procfile (or meta.command) says how to start it.
 * Packages are not downloaded: vendor them into `vendor/` (pip install --target vendor), which
 * `startup` puts on PYTHONPATH.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, readText, writeSupportFile } from '../api/files.ts';
import { type Plugin, PluginError } from '../api/types.ts';
import { WSGI_SERVER, WSGI_SERVER_FILE } from './server.ts';

const ENTRY_MODULES = ['wsgi', 'app'] as const;

/** A module-level `application` (assignment, def, class or import) in Python source. */
const DEFINES_APPLICATION = /^(?:application\s*(?::[^=\n]*)?=|def\s+application\s*\(|class\s+application\b|from\s+\S+\s+import\s+[^\n#]*\bapplication\b)/m;

async function wsgiEntry(dir: string): Promise<string | undefined> {
  for (const m of ENTRY_MODULES) {
    const text = await readText(join(dir, `${m}.py`));
    if (text !== undefined && DEFINES_APPLICATION.test(text)) return m;
  }
  return undefined;
}

async function hasPython(dir: string): Promise<boolean> {
  const names = await readdir(dir);
  return names.some((n) => n.endsWith('.py') || n === 'requirements.txt' || n === 'pyproject.toml');
}

export const wsgi: Plugin = {
  name: 'wsgi',
  version: '1.0.0',
  aliases: ['python', 'python3'],
  async detect({ dir }) {
    const entry = await wsgiEntry(dir);
    if (entry) return { matched: true, reason: `${entry}.py defines a WSGI application callable` };
    if ((await hasPython(dir)) && (await exists(join(dir, 'Procfile')))) {
      return { matched: true, reason: 'Python files and a Procfile' };
    }
    return { matched: false, reason: 'no wsgi.py/app.py defining application, and no Python files with a Procfile' };
  },
  async stage(ctx) {
    const entry = await wsgiEntry(ctx.dir);
    if (!entry && !ctx.startCommand) {
      throw new PluginError('no WSGI application found: define a callable named application in wsgi.py or app.py, or add a Procfile with a web: line for a plain script');
    }
    if (await exists(join(ctx.dir, 'requirements.txt'))) {
      ctx.log('requirements.txt is not installed by this stager: vendor packages into vendor/ (pip install --target vendor -r requirements.txt)');
    }
    let startCommand: string | undefined;
    if (entry) {
      const server = await writeSupportFile(ctx.dropletDir, WSGI_SERVER_FILE, WSGI_SERVER);
      startCommand = `python3 ${server} ${entry}:application`;
      ctx.log(`Serving ${entry}.py's application with the bundled wsgiref server`);
    }
    const vendored = await exists(join(ctx.dir, 'vendor'));
    return {
      startCommand,
      runtime: 'python3',
      environment: { PYTHONUNBUFFERED: '1' },
      searchPaths: vendored ? { PYTHONPATH: ['app/vendor'] } : undefined,
    };
  },
};
