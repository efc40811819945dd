/**
 * The plugin API: what a staging plugin is given and what it returns. A plugin turns the
 * unpacked app (already in the droplet's `app/`) into something `startup` can run; the
 * stager writes `startup`, `stop` and `staging_info.json` from what the plugin returns.
 */
import type { StagingProperties } from '../../contracts/staging.ts';

/** What `unpackArchive` rejects with when it refused or could not unpack an archive: `reason` says why. */
export { ArchiveError } from '../../lib/archive/errors.ts';

/**
 * With `properties.app_root`, the rest of the zip: kept beside the droplet (never packed) so a
 * plugin can read what lives at the zip's root, such as a monorepo's lockfile. Read only.
 */
export interface ZipRoot {
  /** The zip's root directory. */
  dir: string;
  /** The staged subdirectory, relative to `dir`, with `/` separators (`services/api`). */
  appRoot: string;
}

/**
 * The stager's settings a plugin may read: its `DROPWARDEN_*` variables (`DROPWARDEN_NPM_CLI`,
 * `DROPWARDEN_NODE_HEADERS`, `DROPWARDEN_RUNTIMES_DIR`, `DROPWARDEN_BUILDPACKS`, …), given by
 * the stager. A plugin reads them here, never from `process.env`.
 */
export type PluginSettings = Readonly<Record<string, string | undefined>>;

export interface AppSource {
  /** The app's files: the droplet's `app/` (with `app_root`, the subdirectory moved there). */
  dir: string;
  properties: StagingProperties;
  /** Present only with `properties.app_root`. */
  root?: ZipRoot;
  settings: PluginSettings;
  /**
   * Runs a program of the app's quietly, as detection needs (a buildpack's `bin/detect`): in
   * the same sandbox as `StageContext.exec`, with no task log. Resolves with its exit status
   * and the start of its stdout (stderr is dropped), also when it fails; a program that cannot
   * be started, or outlives `timeoutMs`, resolves with `exitCode: null`.
   */
  probe(file: string, args: string[], options: ProbeOptions): Promise<ProbeResult>;
}

export interface ProbeOptions extends Pick<ExecOptions, 'cwd' | 'env' | 'readable'> {
  /** Killed after this long (a detect script that hangs must not hang detection). */
  timeoutMs: number;
}

export interface ProbeResult {
  /** null: killed, timed out, or not started. */
  exitCode: number | null;
  /** Its stdout, up to 4 KiB. */
  stdout: string;
}

/** What `unpackArchive` wrote. */
export interface UnpackedArchive {
  entries: number;
  files: number;
  bytes: number;
}

export interface Detection {
  matched: boolean;
  /** Why it matched or not, in words: logged for every candidate. */
  reason: string;
}

export interface ExecOptions {
  cwd?: string;
  /**
   * The program's whole environment besides a plain PATH and LANG: it gets
   * nothing of the stager's (no AWS_*, no DROPWARDEN_*). Name here every variable it needs.
   */
  env?: Record<string, string>;
  /**
   * Directories it may write besides the droplet and the app's cache (scratch beside the
   * droplet, say): absolute, no spaces. Everything else is read-only or private to it.
   */
  writable?: string[];
  /** Directories put before PATH. */
  pathPrefix?: string[];
  /** Directories it must read even where they lie under a hidden one (/tmp): a buildpack's own. */
  readable?: string[];
}

export interface StageContext extends AppSource {
  /** The droplet being built (its `app/` holds the app). */
  dropletDir: string;
  /** Memory for the app in MB (request `resources.memory`, or the default). */
  memoryMb: number;
  /** A line for the task log, shown live to whoever staged the app. */
  log(message: string): void;
  /**
   * Runs a program on the app's behalf: everything a plugin runs is treated as the app's own
   * code (an npm install script, a buildpack's bin/*), so there is no other way to run one.
   * It runs untrusted (DESIGN §8): as a uid of its own in its own pid, mount, ipc and uts
   * namespaces, with only `options.env`, writing only the droplet, the cache and
   * `options.writable`, unable to reach the host's or the metadata addresses; every process it
   * starts dies when it ends. Its output is streamed into the task log; all of it is killed
   * when the staging deadline passes. Rejects with an ExecError when it
   * exits non-zero or is killed, a PluginError when it cannot be started, and the deadline's
   * own error when the deadline passed.
   */
  exec(file: string, args: string[], options?: ExecOptions): Promise<void>;
  /**
   * Unpacks a zip (a .war inside the app, say) into `destDir` (existing, empty) under the same
   * rules and limits as the app archive itself, for this task (DESIGN §9). Rejects with an
   * ArchiveError saying why, or with the deadline's own error when the deadline passed.
   */
  unpackArchive(zipPath: string, destDir: string): Promise<UnpackedArchive>;
  signal: AbortSignal;
  /**
   * A start command the user gave (`properties.meta.command`, else a Procfile `web:` line): it
   * wins over whatever the plugin would choose, so a plugin must not fail for lack of its own.
   */
  startCommand?: string;
  /**
   * The app's build cache (npm's cache, a buildpack's CACHE_DIR): kept between stagings of the
   * same app, never packed into the droplet. Absent when no cache is configured. Anything that
   * reaches the droplet from here must not depend on what the cache happened to hold.
   */
  cacheDir?: string;
}

export interface StageOutput {
  /**
   * Run from the droplet's `app/` by `startup`, with $PORT set; may be left out only when
   * `ctx.startCommand` was given.
   */
  startCommand?: string;
  runtime?: string;
  /** Exported by `startup` before the command runs, as they are (no expansion). */
  environment?: Record<string, string>;
  /**
   * Search paths `startup` puts in front of a variable (PATH, RUBYLIB, PYTHONPATH…): each a
   * directory relative to the droplet (`app/node_modules/.bin`), made absolute at run time.
   */
  searchPaths?: Record<string, string[]>;
  /**
   * Bash lines `startup` runs in the droplet directory once $PORT is set, just before the app
   * starts (java_web writes Tomcat's server.xml for the port there). Bash only: no other tool.
   */
  prestart?: string[];
}

export interface Plugin {
  name: string;
  version: string;
  aliases?: string[];
  /**
   * Detection runs programs (a buildpack's bin/detect), so it is asked only when no plugin
   * before it matched; the cheap file checks of the others are all asked, to report ambiguity.
   */
  detectsLast?: boolean;
  detect(app: AppSource): Promise<Detection>;
  stage(ctx: StageContext): Promise<StageOutput>;
}

/** A failure the user can act on; its message reaches the result as it is, with no stack. */
export class PluginError extends Error {
  override name = 'PluginError';
}

/** A program `exec` ran that exited non-zero (`exitCode`) or was killed (`signal`). */
export class ExecError extends PluginError {
  override name = 'ExecError';
  /** The command line, as shown in the message. */
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  constructor(command: string, exitCode: number | null, signal: NodeJS.Signals | null) {
    super(`${command} ${ExecError.how(exitCode, signal)}`);
    this.command = command;
    this.exitCode = exitCode;
    this.signal = signal;
  }
  /** How it ended, in words: `exited with status 3`, `was killed by SIGKILL`. */
  get how(): string {
    return ExecError.how(this.exitCode, this.signal);
  }
  private static how(exitCode: number | null, signal: NodeJS.Signals | null): string {
    return signal ? `was killed by ${signal}` : `exited with status ${exitCode}`;
  }
}
