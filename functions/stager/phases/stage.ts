/**
 * Phase 3: choose the plugin (named, or detected), let it stage the app in place, and write
 * the droplet's own files around it: `startup`, `stop`, `staging_info.json`, `logs/`, `tmp/`.
 *
 * The start command is, first to last: `properties.meta.command`, a Procfile `web:` line, the
 * plugin's own. With `properties.app_root`, only that subdirectory of the zip becomes `app/`.
 */
import { lstat, mkdir, readdir, readlink, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import type { StagingInfo, StagingProperties } from '../../../contracts/staging.ts';
import { readText } from '../../../plugins/api/files.ts';
import { parseProcfile } from '../../../plugins/api/procfile.ts';
import { type AppSource, type Plugin, PluginError, type PluginSettings, type StageContext, type UnpackedArchive, type ZipRoot } from '../../../plugins/api/types.ts';
import { UnknownFrameworkError, detectOrder, detectPlugin, findPlugin } from '../../../plugins/registry.ts';
import { renderStartup } from '../../../resources/templates/startup.ts';
import { renderStop } from '../../../resources/templates/stop.ts';
import { PhaseError, classify } from '../errors.ts';
import { ArchiveError } from '../../../lib/archive/errors.ts';
import type { PluginEnvironment } from '../config.ts';
import { execUntrusted, probeUntrusted } from '../exec.ts';
import { type SandboxOptions, sandboxUid } from '../sandbox.ts';
import { unpack } from './unpack.ts';

export const STAGER_VERSION = 'dropwarden-stager 0.1.0';
const DEFAULT_MEMORY_MB = 256;

export interface StageInput {
  dropletDir: string;
  properties: StagingProperties;
  log: (message: string) => void;
  signal: AbortSignal;
  /** The app's build cache directory (see cache.ts), handed to the plugin. */
  cacheDir?: string;
  /** The plugins' settings, their programs' environment, the sandbox mode and the unpack limits of `ctx.unpackArchive` (the task's). */
  plugins: PluginEnvironment;
  /** Hidden from the programs plugins run (the work root, with every other task's workspace). */
  hideFromPrograms?: string[];
}

interface Choice {
  plugin: Plugin;
  detected: boolean;
  /** What staging_info.json records about the choice. */
  detection: Record<string, unknown>;
}

function requestedFramework(p: StagingProperties): string | undefined {
  return p.framework_info?.name ?? p.framework;
}

async function choosePlugin(input: StageInput, app: AppSource): Promise<Choice> {
  const named = requestedFramework(input.properties);
  if (named) {
    const plugin = findPlugin(named);
    input.log(`Using ${plugin.name}: the request names framework "${named}"`);
    return { plugin, detected: false, detection: { requested: named } };
  }
  const order = detectOrder(input.plugins.settings);
  const outcome = await detectPlugin(app, order);
  input.log(`Detecting the framework, in the order ${order.join(', ')}`);
  for (const c of outcome.candidates) {
    input.log(`Detect ${c.name}: ${c.matched ? 'matched' : 'no match'} (${c.reason})`);
  }
  if (!outcome.plugin) {
    throw new PluginError('no framework detected for this app: name one with properties.framework_info.name, or give a start command (properties.meta.command)');
  }
  const matched = outcome.candidates.filter((c) => c.matched).map((c) => c.name);
  const winner = outcome.candidates.find((c) => c.name === outcome.plugin!.name)!;
  const why =
    matched.length === 1
      ? `the only match (${winner.reason})`
      : `the first of ${matched.length} matches (${matched.join(', ')}) in the detection order (${winner.reason})`;
  input.log(`Using ${outcome.plugin.name}: ${why}`);
  return {
    plugin: outcome.plugin,
    detected: true,
    detection: { order, candidates: outcome.candidates, chosen: outcome.plugin.name, why },
  };
}

/**
 * `properties.app_root`: the subdirectory becomes the droplet's `app/`; the rest of the zip is
 * moved beside the droplet (`<droplet>.zip-root`, never packed, removed after staging) and the
 * plugin gets it as a read-only view (`ctx.root`). We keep the whole root rather than copy the
 * lockfile into `app/` because a monorepo's lockfile (npm workspaces) only makes sense with the
 * workspace manifests beside it, and because the droplet must hold exactly the app: a plugin
 * that uses the root's lockfile installs from it into `app/` itself.
 */
async function applyAppRoot(dropletDir: string, appRoot: string): Promise<ZipRoot> {
  const shown = JSON.stringify(appRoot);
  if (appRoot.includes('\\') || appRoot.includes('\0') || posix.isAbsolute(appRoot)) {
    throw new PluginError(`app_root ${shown} must be a relative path inside the app, with "/" separators`);
  }
  const rel = posix.normalize(appRoot).replace(/\/+$/, '');
  if (rel === '..' || rel.startsWith('../')) throw new PluginError(`app_root ${shown} points outside the app`);
  const appDir = join(dropletDir, 'app');
  const rootDir = `${dropletDir}.zip-root`;
  if (rel === '.' || rel === '') return { dir: appDir, appRoot: '.' };
  const target = join(appDir, rel);
  const st = await lstat(target).catch(() => undefined);
  if (!st?.isDirectory()) throw new PluginError(`app_root ${shown} is not a directory in the app`);
  // A symlinked parent could lead out of the app: the real path must stay under it.
  const real = await realpath(target);
  if (!real.startsWith((await realpath(appDir)) + sep)) throw new PluginError(`app_root ${shown} points outside the app`);
  await rm(rootDir, { recursive: true, force: true });
  await rename(appDir, rootDir);
  await rename(join(rootDir, rel), appDir);
  await checkLinksStayInside(appDir, rel);
  return { dir: rootDir, appRoot: rel };
}

/** Symlinks that were fine in the whole zip may leave the subdirectory: refuse those. */
async function checkLinksStayInside(appDir: string, appRoot: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isSymbolicLink()) {
        const to = resolve(dirname(path), await readlink(path));
        if (to !== appDir && !to.startsWith(appDir + sep)) {
          throw new PluginError(`symlink ${posix.join(appRoot, relative(appDir, path))} points outside app_root ${JSON.stringify(appRoot)}`);
        }
      }
    }
  };
  await walk(appDir);
}

/** A plugin's archive, unpacked by the unpack phase's own rules under the task's limits and deadline. */
async function unpackForPlugin(input: StageInput, zipPath: string, destDir: string): Promise<UnpackedArchive> {
  try {
    return await unpack({ zipPath, destDir, limits: input.plugins.unpackLimits, signal: input.signal });
  } catch (err) {
    if (input.signal.aborted) throw err;
    throw new ArchiveError((err as { reason?: string }).reason ?? (err as Error).message);
  }
}

async function procfileWeb(appDir: string, log: (m: string) => void): Promise<string | undefined> {
  const text = await readText(join(appDir, 'Procfile'));
  if (text === undefined) return undefined;
  const web = parseProcfile(text).get('web');
  if (!web) log('Procfile has no web: line; it does not change the start command');
  return web;
}

export async function stage(input: StageInput): Promise<StagingInfo> {
  const appDir = join(input.dropletDir, 'app');
  let root: ZipRoot | undefined;
  try {
    const appRoot = input.properties.app_root;
    if (appRoot) {
      root = await applyAppRoot(input.dropletDir, appRoot);
      input.log(`Staging the subdirectory ${root.appRoot} of the app (app_root)`);
    }
    const procfile = await procfileWeb(appDir, input.log);
    const given = input.properties.meta?.command;
    const startCommand = given ?? procfile;
    const source = given ? 'meta.command' : procfile ? 'Procfile' : undefined;
    if (given && procfile) input.log("The request's start command (meta.command) wins over the Procfile's web: line");
    else if (procfile) input.log(`Start command from the Procfile: ${procfile}`);

    // Every program of this staging, detection's included, runs as one sandbox uid (DESIGN §8).
    const sandbox: SandboxOptions = {
      mode: input.plugins.sandbox,
      uid: sandboxUid(),
      handedOver: new Set<string>(),
      writable: [input.dropletDir, ...(input.cacheDir ? [input.cacheDir] : [])],
      hide: input.hideFromPrograms,
    };
    const app: AppSource = {
      dir: appDir,
      properties: input.properties,
      root,
      settings: input.plugins.settings,
      probe: (file, args, options) => probeUntrusted(file, args, { ...options, signal: input.signal, sandbox }),
    };
    const choice = await choosePlugin(input, app);
    const { plugin } = choice;
    const ctx: StageContext = {
      ...app,
      dropletDir: input.dropletDir,
      memoryMb: input.properties.resources?.memory ?? DEFAULT_MEMORY_MB,
      log: input.log,
      signal: input.signal,
      startCommand,
      cacheDir: input.cacheDir,
      exec: (file, args, options) => execUntrusted(file, args, { ...options, log: input.log, signal: input.signal, sandbox }),
      unpackArchive: (zipPath, destDir) => unpackForPlugin(input, zipPath, destDir),
    };
    const out = await plugin.stage(ctx);
    const command = startCommand ?? out.startCommand;
    if (!command) throw new PluginError(`the ${plugin.name} plugin found no start command for this app`);
    if (startCommand && out.startCommand && out.startCommand !== startCommand) {
      input.log(`${source} overrides the ${plugin.name} start command (${out.startCommand})`);
    }
    const generator = `${STAGER_VERSION} (${plugin.name} ${plugin.version})`;
    await mkdir(join(input.dropletDir, 'logs'), { recursive: true });
    await mkdir(join(input.dropletDir, 'tmp'), { recursive: true });
    const environment = { ...out.environment };
    await writeFile(
      join(input.dropletDir, 'startup'),
      renderStartup({ startCommand: command, environment, searchPaths: out.searchPaths, prestart: out.prestart, generator }),
      { mode: 0o755 },
    );
    await writeFile(join(input.dropletDir, 'stop'), renderStop({ generator }), { mode: 0o755 });
    const info: StagingInfo = {
      framework: plugin.name,
      runtime: input.properties.runtime_info?.name ?? input.properties.runtime ?? out.runtime,
      start_command: command,
      start_command_source: source ?? plugin.name,
      detected: choice.detected,
      detection: choice.detection,
      ...(root ? { app_root: root.appRoot } : {}),
      plugins: { [plugin.name]: plugin.version },
      stager: STAGER_VERSION,
    };
    await writeFile(join(input.dropletDir, 'staging_info.json'), `${JSON.stringify(info, null, 2)}\n`);
    return info;
  } catch (err) {
    // A plugin's failure is the app's: another delivery would fail the same way.
    throw classify(err, {
      phase: 'stage',
      signal: input.signal,
      describe: (e) => {
        if (e instanceof PluginError || e instanceof UnknownFrameworkError) return new PhaseError('stage', e.message);
        return new PhaseError('stage', (e as Error).message, { cause: e });
      },
    });
  } finally {
    if (root && root.dir !== appDir) await rm(root.dir, { recursive: true, force: true });
  }
}
