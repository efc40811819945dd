/**
 * The plugin API: what a staging plugin is given and what it returns. A plugin turns the
 * unpacked app (already in the droplet's `app/`) into something `startup` can run; the
 * stager writes `startup`, `stop` and `staging_info.json` from what the plugin returns.
 */
import type { StagingProperties } from '../../contracts/staging.ts';

export interface AppSource {
  /** The app's files (the droplet's `app/`, or a subdirectory with `app_root`). */
  dir: string;
  properties: StagingProperties;
}

export interface Detection {
  matched: boolean;
  /** Why it matched or not, in words: logged for every candidate. */
  reason: string;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
}

export interface StageContext extends AppSource {
  /** The droplet being built (its `app/` holds the app). */
  dropletDir: string;
  /** Memory for the app in MB (request `resources.memory`, or the default). */
  memoryMb: number;
  /** A line for the task log, shown live to whoever staged the app. */
  log(message: string): void;
  /**
   * Runs a program in its own process group, its output streamed into the task log; the
   * whole group is killed when the staging deadline passes. Rejects on a non-zero exit.
   */
  exec(file: string, args: string[], options?: ExecOptions): Promise<void>;
  signal: AbortSignal;
}

export interface StageOutput {
  /** Run from the droplet's `app/` by `startup`, with $PORT set. */
  startCommand: string;
  runtime?: string;
  /** Exported by `startup` before the command runs. */
  environment?: Record<string, string>;
}

export interface Plugin {
  name: string;
  version: string;
  aliases?: string[];
  detect(app: AppSource): Promise<Detection>;
  stage(ctx: StageContext): Promise<StageOutput>;
}

/** A failure the user can act on; its message reaches the result as it is, with no stack. */
export class PluginError extends Error {
  override name = 'PluginError';
}
