/**
 * buildpack: the classic (Heroku / Cloud Foundry v2) buildpack API over the buildpacks the
 * operator configured (config.ts), asked in order:
 *   bin/detect BUILD_DIR                      exit 0 and a name on stdout: "I can build this"
 *   bin/compile BUILD_DIR CACHE_DIR ENV_DIR   builds the app in place (BUILD_DIR is app/)
 *   bin/release BUILD_DIR                     YAML: default_process_types.web, config_vars
 * The first buildpack that detects the app compiles it. `.profile.d/*.sh` that compile leaves
 * in the app are sourced by `startup` before the app starts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type AppSource, type Detection, ExecError, type Plugin, PluginError, type StageContext } from '../api/types.ts';
import { type Buildpack, checkBuildpack, configuredBuildpacks } from './config.ts';
import { parseRelease } from './release.ts';

/** A detect script that hangs must not hang detection of every app. */
const DETECT_TIMEOUT_MS = 60_000;

const tried = (bps: Buildpack[]) => bps.map((b) => b.name).join(', ');

/** bin/detect during detection (no task log to write to), in the sandbox: its first stdout line, or undefined. */
async function detectQuietly(bp: Buildpack, app: AppSource): Promise<string | undefined> {
  const { exitCode, stdout } = await app.probe(join(bp.dir, 'bin', 'detect'), [app.dir], { cwd: app.dir, readable: [bp.dir], timeoutMs: DETECT_TIMEOUT_MS });
  return exitCode === 0 ? stdout.split('\n')[0].trim() || bp.name : undefined;
}

/** Runs a script with its stdout into a file (stderr goes to the task log) under the deadline. */
async function runToFile(ctx: StageContext, script: string, args: string[], out: string): Promise<string> {
  const scratch = dirname(out);
  await ctx.exec('bash', ['-c', 'f="$1"; shift; exec "$@" > "$f"', 'bash', out, script, ...args], {
    cwd: ctx.dir,
    env: { HOME: scratch },
    writable: [scratch],
    readable: [dirname(dirname(script))],
  });
  return readFile(out, 'utf8');
}

async function detectInStaging(ctx: StageContext, bp: Buildpack, scratch: string): Promise<string | undefined> {
  try {
    const out = await runToFile(ctx, join(bp.dir, 'bin', 'detect'), [ctx.dir], join(scratch, 'detect.out'));
    return out.split('\n')[0].trim() || bp.name;
  } catch (err) {
    if (ctx.signal.aborted || !(err instanceof PluginError)) throw err;
    return undefined;
  }
}

/** A failed script, named by buildpack and step, without the stager's paths (its output is in the log). */
async function step<T>(ctx: StageContext, bp: Buildpack, script: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (ctx.signal.aborted || !(err instanceof PluginError)) throw err;
    const how = err instanceof ExecError ? err.how : `failed: ${err.message}`;
    throw new PluginError(`Buildpack staging failed: buildpack ${bp.name}'s bin/${script} ${how}`);
  }
}

/** ENV_DIR: one file per variable of the request's environment, named by the variable. */
async function writeEnvDir(dir: string, environment: readonly string[] | undefined): Promise<void> {
  await mkdir(dir);
  for (const pair of environment ?? []) {
    const eq = pair.indexOf('=');
    const name = eq > 0 ? pair.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    await writeFile(join(dir, name), pair.slice(eq + 1));
  }
}

export const buildpack: Plugin = {
  name: 'buildpack',
  detectsLast: true,
  version: '1.0.0',
  async detect(app: AppSource): Promise<Detection> {
    const bps = configuredBuildpacks(app.settings);
    if (bps.length === 0) return { matched: false, reason: 'no buildpacks are configured (DROPWARDEN_BUILDPACKS)' };
    for (const bp of bps) {
      const name = await detectQuietly(bp, app);
      if (name) return { matched: true, reason: `buildpack ${bp.name} detected ${JSON.stringify(name)}` };
    }
    return { matched: false, reason: `none of the buildpacks detected the app (tried ${tried(bps)})` };
  },
  async stage(ctx) {
    const bps = configuredBuildpacks(ctx.settings);
    if (bps.length === 0) {
      throw new PluginError('Buildpack staging failed: this stager has no buildpacks configured (DROPWARDEN_BUILDPACKS)');
    }
    for (const bp of bps) await checkBuildpack(bp);
    const scratch = await mkdtemp(join(tmpdir(), 'dw-buildpack-'));
    try {
      let chosen: { bp: Buildpack; name: string } | undefined;
      for (const bp of bps) {
        const name = await detectInStaging(ctx, bp, scratch);
        ctx.log(`Buildpack ${bp.name}: ${name ? `detected ${JSON.stringify(name)}` : 'no match'}`);
        if (name) {
          chosen = { bp, name };
          break;
        }
      }
      if (!chosen) {
        throw new PluginError(`Buildpack staging failed: no buildpack detected this app (tried ${tried(bps)})`);
      }
      const { bp, name } = chosen;
      const envDir = join(scratch, 'env');
      await writeEnvDir(envDir, ctx.properties.environment);
      // Each buildpack its own corner of the app's cache, so plugins and buildpacks never share.
      const cacheDir = ctx.cacheDir ? join(ctx.cacheDir, 'buildpack', bp.name) : join(scratch, 'cache');
      await mkdir(cacheDir, { recursive: true });
      ctx.log(`Compiling with buildpack ${bp.name} (${name})`);
      await step(ctx, bp, 'compile', () =>
        ctx.exec(join(bp.dir, 'bin', 'compile'), [ctx.dir, cacheDir, envDir], {
          cwd: ctx.dir,
          env: { HOME: scratch },
          writable: [scratch, cacheDir],
          readable: [bp.dir],
        }),
      );
      const yaml = await step(ctx, bp, 'release', () => runToFile(ctx, join(bp.dir, 'bin', 'release'), [ctx.dir], join(scratch, 'release.yml')));
      const release = parseRelease(yaml, `buildpack ${bp.name}'s bin/release`);
      const web = release.default_process_types.web;
      if (!web && !ctx.startCommand) {
        throw new PluginError(`Buildpack staging failed: buildpack ${bp.name} gives no web process (default_process_types.web); add a Procfile with a web: line`);
      }
      if (web) ctx.log(`Start command from buildpack ${bp.name}: ${web}`);
      return { startCommand: web, runtime: name, environment: release.config_vars };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
