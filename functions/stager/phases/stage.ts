/**
 * Phase 3: choose the plugin (named, or detected), let it stage the app in place, and write
 * the droplet's own files around it: `startup`, `stop`, `staging_info.json`, `logs/`, `tmp/`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StagingInfo, StagingProperties } from '../../../contracts/staging.ts';
import { PluginError, type Plugin, type StageContext } from '../../../plugins/api/types.ts';
import { UnknownFrameworkError, detectPlugin, findPlugin } from '../../../plugins/registry.ts';
import { renderStartup } from '../../../resources/templates/startup.ts';
import { renderStop } from '../../../resources/templates/stop.ts';
import { PhaseError } from '../errors.ts';
import { execInGroup } from '../exec.ts';

export const STAGER_VERSION = 'dropwarden-stager 0.1.0';
const DEFAULT_MEMORY_MB = 256;

export interface StageInput {
  dropletDir: string;
  properties: StagingProperties;
  log: (message: string) => void;
  signal: AbortSignal;
}

function requestedFramework(p: StagingProperties): string | undefined {
  return p.framework_info?.name ?? p.framework;
}

async function choosePlugin(input: StageInput, appDir: string): Promise<{ plugin: Plugin; detected: boolean }> {
  const named = requestedFramework(input.properties);
  if (named) return { plugin: findPlugin(named), detected: false };
  const outcome = await detectPlugin({ dir: appDir, properties: input.properties });
  for (const c of outcome.candidates) {
    input.log(`Detect ${c.name}: ${c.matched ? 'matched' : 'no match'} (${c.reason})`);
  }
  if (!outcome.plugin) {
    throw new PluginError(
      'no framework detected for this app: name one with properties.framework_info.name, or give a start command (properties.meta.command)',
    );
  }
  input.log(`Using ${outcome.plugin.name}: the first match in the detection order`);
  return { plugin: outcome.plugin, detected: true };
}

export async function stage(input: StageInput): Promise<StagingInfo> {
  const appDir = join(input.dropletDir, 'app');
  try {
    const { plugin, detected } = await choosePlugin(input, appDir);
    const ctx: StageContext = {
      dir: appDir,
      properties: input.properties,
      dropletDir: input.dropletDir,
      memoryMb: input.properties.resources?.memory ?? DEFAULT_MEMORY_MB,
      log: input.log,
      signal: input.signal,
      exec: (file, args, options) => execInGroup(file, args, { ...options, log: input.log, signal: input.signal }),
    };
    const out = await plugin.stage(ctx);
    const generator = `${STAGER_VERSION} (${plugin.name} ${plugin.version})`;
    await mkdir(join(input.dropletDir, 'logs'), { recursive: true });
    await mkdir(join(input.dropletDir, 'tmp'), { recursive: true });
    const environment = { ...out.environment };
    await writeFile(join(input.dropletDir, 'startup'), renderStartup({ startCommand: out.startCommand, environment, generator }), { mode: 0o755 });
    await writeFile(join(input.dropletDir, 'stop'), renderStop({ generator }), { mode: 0o755 });
    const info: StagingInfo = {
      framework: plugin.name,
      runtime: out.runtime,
      start_command: out.startCommand,
      detected,
      plugins: { [plugin.name]: plugin.version },
      stager: STAGER_VERSION,
    };
    await writeFile(join(input.dropletDir, 'staging_info.json'), `${JSON.stringify(info, null, 2)}\n`);
    return info;
  } catch (err) {
    if (input.signal.aborted) throw input.signal.reason ?? err;
    if (err instanceof PluginError || err instanceof UnknownFrameworkError) throw new PhaseError('stage', err.message);
    throw new PhaseError('stage', (err as Error).message, { cause: err });
  }
}
