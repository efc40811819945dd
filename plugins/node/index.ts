/**
 * node: an app with a package.json (or a server.js/app.js/index.js/main.js at its root).
 *
 * Start command: package.json `scripts.start`, else `node <main>`, else `node` on the first of
 * server.js, app.js, index.js, main.js. Dependencies: an app that brings `node_modules` keeps
 * them (native modules are rebuilt for this platform); else, with a lockfile, `npm ci
 * --omit=dev` by the npm that ships with the stager (never the host's, never at run time).
 * npm's cache lives beside the droplet and is dropped, so the droplet holds only the app.
 */
import { createRequire } from 'node:module';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SETTING } from '../../contracts/settings.ts';
import { exists, firstExisting, readText } from '../api/files.ts';
import { ExecError, type Plugin, PluginError, type PluginSettings, type StageContext } from '../api/types.ts';

const ENTRY_FILES = ['server.js', 'app.js', 'index.js', 'main.js'] as const;
const LOCKFILES = ['npm-shrinkwrap.json', 'package-lock.json'] as const;

interface PackageJson {
  name?: string;
  main?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
}

async function readPackageJson(dir: string): Promise<PackageJson | undefined> {
  const text = await readText(join(dir, 'package.json'));
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as PackageJson;
  } catch (err) {
    throw new PluginError(`package.json is not valid JSON: ${(err as Error).message}`);
  }
}

const shellWord = (s: string) => (/^[A-Za-z0-9_./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The start command the app itself implies, or undefined. */
export async function nodeStartCommand(dir: string, pkg: PackageJson | undefined): Promise<string | undefined> {
  const start = pkg?.scripts?.start;
  if (typeof start === 'string' && start.trim()) return start.trim();
  if (typeof pkg?.main === 'string' && pkg.main.trim()) return `node ${shellWord(pkg.main.trim())}`;
  const entry = await firstExisting(dir, ENTRY_FILES);
  return entry ? `node ${entry}` : undefined;
}

/**
 * The npm that ships with the stager: the `npm` package among the stager's own dependencies,
 * or `DROPWARDEN_NPM_CLI` (an npm-cli.js the deployment bundles, e.g. in a Lambda layer).
 * Never the host's `npm` from PATH.
 */
export function bundledNpmCli(settings: PluginSettings): string | undefined {
  const configured = settings[SETTING.npmCli];
  if (configured) return configured;
  try {
    // npm's exports map hides bin/: find the package, then the CLI beside its manifest.
    return join(dirname(createRequire(import.meta.url).resolve('npm/package.json')), 'bin', 'npm-cli.js');
  } catch {
    return undefined;
  }
}

/** Any package under node_modules with a binding.gyp: a native module to rebuild. */
async function hasNativeModules(dir: string, depth = 0): Promise<boolean> {
  if (depth > 8) return false;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) {
    if (e.isFile() && e.name === 'binding.gyp') return true;
  }
  for (const e of entries) {
    if (e.isDirectory() && !e.name.startsWith('.') && (await hasNativeModules(join(dir, e.name), depth + 1))) return true;
  }
  return false;
}

async function runNpm(ctx: StageContext, args: string[]): Promise<void> {
  const cli = bundledNpmCli(ctx.settings);
  if (!cli) {
    throw new PluginError("this stager has no npm bundled (the npm package is missing from its dependencies), so it cannot install this app's dependencies");
  }
  // npm's logs go beside the droplet, not into it, and are removed afterwards; its cache is the
  // app's build cache when there is one (kept between stagings: npm ci verifies what it takes).
  const scratch = await mkdtemp(`${ctx.dropletDir}.npm-`);
  try {
    const env: Record<string, string> = {
      npm_config_cache: ctx.cacheDir ? join(ctx.cacheDir, 'npm') : join(scratch, 'cache'),
      npm_config_logs_dir: join(scratch, 'logs'),
      npm_config_userconfig: join(scratch, 'npmrc'),
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      npm_config_progress: 'false',
      npm_config_loglevel: 'warn',
      npm_config_foreground_scripts: 'true',
      HOME: scratch,
    };
    if (ctx.settings.DROPWARDEN_NODE_HEADERS) env.npm_config_nodedir = ctx.settings.DROPWARDEN_NODE_HEADERS;
    // The stager's own node runs npm, so native modules are built for the node it ships.
    // npm's summary ("added 3 packages in 2s") would put a duration into logs/staging.log and
    // so change the droplet's sha256 from one staging to the next: the durations are cut.
    const script = 'set -o pipefail; "$0" "$@" 2>&1 | sed -u -E "s/ in [0-9.]+(ms|s|m)$//"';
    try {
      await ctx.exec('bash', ['-c', script, process.execPath, cli, ...args], {
        cwd: ctx.dir,
        env,
        pathPrefix: [dirname(process.execPath)],
        writable: [scratch],
      });
    } catch (err) {
      if (!(err instanceof PluginError)) throw err;
      const how = err instanceof ExecError ? err.how : err.message;
      throw new PluginError(`npm ${args.join(' ')} ${how}: its output is in the staging log above`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export const node: Plugin = {
  name: 'node',
  version: '1.0.0',
  aliases: ['nodejs'],
  async detect({ dir }) {
    if (await exists(join(dir, 'package.json'))) return { matched: true, reason: 'package.json found' };
    const entry = await firstExisting(dir, ENTRY_FILES);
    return entry ? { matched: true, reason: `${entry} found` } : { matched: false, reason: `no package.json, ${ENTRY_FILES.join(', ')}` };
  },
  async stage(ctx) {
    const pkg = await readPackageJson(ctx.dir);
    const own = await nodeStartCommand(ctx.dir, pkg);
    if (!own && !ctx.startCommand) {
      throw new PluginError(
        `Unable to determine Node.js startup command: add scripts.start or main to package.json, a ${ENTRY_FILES.join('/')} file, or a Procfile with a web: line`,
      );
    }
    const modules = join(ctx.dir, 'node_modules');
    const lockfile = await firstExisting(ctx.dir, LOCKFILES);
    if (await exists(modules)) {
      ctx.log('The app brings node_modules: kept as they are');
      if (await hasNativeModules(modules)) {
        ctx.log('Rebuilding native modules for this platform (npm rebuild)');
        await runNpm(ctx, ['rebuild']);
      }
    } else if (lockfile) {
      ctx.log(`Installing dependencies from ${lockfile} (npm ci --omit=dev)`);
      await runNpm(ctx, ['ci', '--omit=dev']);
    } else {
      const rootLock = ctx.root ? await firstExisting(ctx.root.dir, LOCKFILES) : undefined;
      if (!pkg?.dependencies || Object.keys(pkg.dependencies).length === 0) {
        ctx.log(rootLock ? `No dependencies to install (the app declares none; the zip root's ${rootLock} is not needed)` : 'No dependencies to install');
      } else if (rootLock) {
        throw new PluginError(
          `the lockfile is at the zip's root (${rootLock}), not in app_root ${ctx.root!.appRoot}: npm workspaces are not staged from a subdirectory yet; stage the whole zip, or add a lockfile to ${ctx.root!.appRoot}`,
        );
      } else {
        throw new PluginError(
          'package.json lists dependencies but there is no package-lock.json (or npm-shrinkwrap.json) to install them from: run npm install and add the lockfile, or bring node_modules',
        );
      }
    }
    // Build tools' caches (babel, webpack, eslint) under node_modules/.cache would make two stagings differ.
    await rm(join(modules, '.cache'), { recursive: true, force: true });
    if (own) ctx.log(`Start command: ${own}`);
    return {
      startCommand: own,
      runtime: 'node',
      environment: { NODE_ENV: 'production' },
      searchPaths: (await exists(join(modules, '.bin'))) ? { PATH: ['app/node_modules/.bin'] } : undefined,
    };
  },
};
