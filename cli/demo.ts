/**
 * `up`'s first look: the sample apps staged and started at once, with a bar per app on a
 * terminal (lines otherwise), each app's URL once it is running.
 */
import cliProgress from 'cli-progress';
import type { InstanceState } from '../contracts/instances.ts';
import { routeFor } from '../contracts/routes.ts';
import type { StackConfig } from '../lib/stack-config.ts';
import type { SampleApp } from '../samples/index.ts';
import type { AgentApi } from './agent-api.ts';
import { openAppArchive } from './app-archive.ts';
import { AppCrashedError, startApp } from './app-client.ts';
import { stageApp } from './staging-client.ts';

export interface DemoOutcome {
  app: SampleApp;
  url?: string;
  error?: string;
}

const STEPS = ['uploading', 'staging', 'starting', 'running'] as const;
type Step = (typeof STEPS)[number] | 'failed';

/** Per app progress: bars on a terminal, a line per step otherwise. */
export interface DemoDisplay {
  step(app: SampleApp, step: Step, detail?: string): void;
  /** A line above the bars (other output while they are shown). */
  log(line: string): void;
  stop(): void;
}

export function demoDisplay(apps: SampleApp[], stream: NodeJS.WriteStream = process.stderr): DemoDisplay {
  const width = Math.max(...apps.map((a) => a.name.length));
  if (!stream.isTTY) {
    const last = new Map<string, string>();
    return {
      step(app, step, detail) {
        if (last.get(app.name) === step) return;
        last.set(app.name, step);
        stream.write(`${app.name.padEnd(width)}  ${step}${detail ? ` ${detail}` : ''}\n`);
      },
      log: (line) => stream.write(`${line}\n`),
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { stream, format: '{name} {bar} {status}', hideCursor: true, clearOnComplete: false, barsize: 20, gracefulExit: false },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map(apps.map((a) => [a.name, multi.create(STEPS.length - 1, 0, { name: a.name.padEnd(width), status: 'waiting' })]));
  return {
    step(app, step, detail) {
      const status = { status: `${step}${detail ? ` ${detail}` : ''}` };
      const bar = bars.get(app.name)!;
      if (step === 'failed') bar.update(status);
      else bar.update(STEPS.indexOf(step), status);
    },
    log: (line) => multi.log(`${line}\n`),
    stop: () => multi.stop(),
  };
}

async function runOne(stack: StackConfig, api: AgentApi, app: SampleApp, display: DemoDisplay): Promise<DemoOutcome> {
  /** `summary` on the app's line; the whole of it (a staging error, a crash's log tail) in the outcome. */
  const fail = (summary: string, details?: string): DemoOutcome => {
    display.step(app, 'failed', summary);
    return { app, error: details ? `${summary}\n${details}` : summary };
  };
  try {
    display.step(app, 'uploading');
    const result = await stageApp(stack, {
      appId: app.name,
      archive: await openAppArchive(app.path),
      properties: {
        ...(app.command ? { meta: { command: app.command } } : {}),
        ...(app.memory ? { resources: { memory: app.memory } } : {}),
      },
      // Published every second while staging: the first one means the stager took it.
      onLog: () => display.step(app, 'staging'),
    });
    if (result.error) return fail(result.error.replace(/\n\s*/, ' ').split('\n')[0], result.error);
    display.step(app, 'starting');
    const [instance] = await startApp(stack, {
      appId: app.name,
      dropletUri: result.droplet!.uri,
      memory: app.memory,
      api,
      timeoutSeconds: 180,
      onState: (s: InstanceState) => s.state === 'STARTING' && display.step(app, 'starting'),
    });
    // The app's route (DESIGN §7) where the stack has routes, else the instance's own address.
    const url = stack.routes ? routeFor(stack.routes, app.name) : (instance.url ?? undefined);
    display.step(app, 'running', url ?? '');
    return { app, url };
  } catch (err) {
    if (err instanceof AppCrashedError) return fail(err.message, err.state.logs_tail?.trimEnd());
    return fail((err as Error).message);
  }
}

/** Stages and starts every app at once; resolves when each is running or has failed. */
export async function runDemo(stack: StackConfig, api: AgentApi, apps: SampleApp[], display: DemoDisplay): Promise<DemoOutcome[]> {
  try {
    return await Promise.all(apps.map((app) => runOne(stack, api, app, display)));
  } finally {
    display.stop();
  }
}
