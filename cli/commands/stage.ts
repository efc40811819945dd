import { basename, resolve } from 'node:path';
import { APP_ID_RULE, isAppId } from '../../contracts/common.ts';
import { Command, Option } from 'commander';
import type { StagingProperties, StagingResult } from '../../contracts/staging.ts';
import { openAppArchive } from '../app-archive.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../errors.ts';
import { progressBar } from '../progress.ts';
import { resolveStack } from '../stack.ts';
import { downloadDroplet, stageApp } from '../staging-client.ts';

export interface StageFlags {
  framework?: string;
  command?: string;
  memory?: string;
  env: string[];
  appId?: string;
  dropletOut?: string;
  json?: boolean;
}

/** The staging flags `stage` and `push` share. */
export function addStageFlags(cmd: Command): Command {
  return cmd
    .argument('<path>', 'app directory, .zip or .war')
    .option('--framework <name>', 'staging plugin to use (default: detect)')
    .option('--command <cmd>', 'start command (standalone apps, or to override)')
    .option('--memory <mb>', 'memory for the app in MB')
    .addOption(new Option('--env <K=V>', 'environment variable for the app (repeatable)').argParser((v: string, prev: string[]) => [...prev, v]).default([]))
    .option('--app-id <id>', 'app id (default: the directory or file name)')
    .option('--droplet-out <file>', 'also download the droplet to this file')
    .option('--json', 'print the StagingResult as JSON on the last line of stdout');
}

export function propertiesFrom(flags: StageFlags): StagingProperties {
  const properties: StagingProperties = {};
  if (flags.framework) properties.framework_info = { name: flags.framework };
  if (flags.command) properties.meta = { command: flags.command };
  if (flags.memory !== undefined) {
    const mb = Number(flags.memory);
    if (!Number.isInteger(mb) || mb <= 0) throw new UsageError(`--memory ${flags.memory}: give a whole number of MB`);
    properties.resources = { memory: mb };
  }
  for (const kv of flags.env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(kv)) throw new UsageError(`--env ${kv}: give NAME=value`);
  }
  if (flags.env.length) properties.environment = flags.env;
  return properties;
}

export function appIdFor(path: string, given?: string): string {
  const id = given ?? basename(resolve(path)).replace(/\.(zip|war|jar)$/i, '');
  if (!isAppId(id)) throw new UsageError(`app id "${id}" is not usable: ${APP_ID_RULE} (--app-id)`);
  return id;
}

/** Stages PATH and reports it; returns the result (the caller sets the exit code). */
export async function runStage(path: string, flags: StageFlags): Promise<StagingResult> {
  const stack = resolveStack(process.env);
  const properties = propertiesFrom(flags);
  const appId = appIdFor(path, flags.appId);
  const archive = await openAppArchive(path);
  const say = (s: string) => process.stderr.write(s);
  const uploadBar = progressBar('Uploading app');
  const result = await stageApp(stack, {
    appId,
    archive,
    properties,
    cleanUpOnSigint: true,
    onUploadProgress: (d, t) => uploadBar.update(d, t),
    onLog: (text) => {
      uploadBar.stop();
      say(text);
    },
  });
  uploadBar.stop();
  if (result.error) {
    say(`\n${result.error}\n`);
  } else {
    say(`\nStaged ${appId}: ${result.droplet!.uri} (${result.droplet!.size} bytes, sha256 ${result.droplet!.sha256})\n`);
    if (flags.dropletOut) {
      const bar = progressBar('Downloading droplet');
      await downloadDroplet(stack, result.droplet!.uri, flags.dropletOut, (d, t) => bar.update(d, t));
      bar.stop();
      say(`Droplet saved to ${flags.dropletOut}\n`);
    }
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

export function stageCommand(): Command {
  return addStageFlags(new Command('stage').description('Stage an app into a droplet on the running stack')).action(async (path: string, flags: StageFlags) => {
    const result = await runStage(path, flags);
    process.exitCode = result.error ? EXIT_FAILED : EXIT_OK;
  });
}
