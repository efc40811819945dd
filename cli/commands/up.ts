import { Command } from 'commander';
import { setUpHost } from '../../local/host-setup.ts';
import { PrerequisiteError } from '../../local/prerequisites.ts';
import { SetupBuildError } from '../../local/setup-errors.ts';
import { AlreadyRunningError, LocalStack } from '../../local/up.ts';
import { type SampleApp, selectSamples } from '../../samples/index.ts';
import { AgentApi } from '../agent-api.ts';
import { stopApp } from '../app-client.ts';
import { type DemoDisplay, demoDisplay, runDemo } from '../demo.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../errors.ts';

/** Without --verbose, a part's line is shown when it is not a structured log line, or is a warning or worse. */
export function worthShowing(line: string): boolean {
  if (!line.startsWith('{')) return true;
  // The router's access log, a line per request: not worth a parse each.
  if (line.includes('"level":"INFO"')) return false;
  try {
    const level = String((JSON.parse(line) as { level?: unknown }).level ?? '').toUpperCase();
    return ['WARN', 'ERROR', 'CRITICAL'].includes(level);
  } catch {
    return true;
  }
}

/** The samples this host can run (after set-up, all of them), saying why any is left out. */
function demoApps(say: (line: string) => void): SampleApp[] {
  const { runnable, skipped } = selectSamples();
  for (const { app, why } of skipped) say(`Skipping sample ${app.name}: ${why}`);
  return runnable;
}

/** Every app the agent runs gets a StopRequest; waits (a while) until they are STOPPED. */
async function stopEveryApp(stack: LocalStack, say: (line: string) => void): Promise<void> {
  if (!stack.config || !stack.containers) return;
  const api = new AgentApi(stack.containers.agentApi);
  const apps = (await api.apps().catch(() => [])).filter((a) => a.instances.some((i) => i.state !== 'STOPPED'));
  if (!apps.length) return;
  say(`Stopping ${apps.length} app${apps.length === 1 ? '' : 's'}…`);
  const results = await Promise.allSettled(apps.map((a) => stopApp(stack.config!, { appId: a.app_id, api, timeoutSeconds: 20 })));
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') say(`  ${apps[i].app_id}: ${(r.reason as Error).message} (its containers are destroyed anyway)`);
  }
}

export function upCommand(): Command {
  return new Command('up')
    .description('Run the embedded stack in the foreground (emulator, stager worker, wardend, agent, router) and the sample apps; Ctrl-C stops it all')
    .option('--no-demo', 'do not stage and start the sample apps')
    .option('--port <n>', 'emulator port (taken if free, else any)', '4566')
    .option('--data-dir <dir>', 'where S3 objects, staging workspaces, containers and droplets live (default ~/.dropwarden/data)')
    .option('--verbose', 'show every line the parts log (default: warnings and errors)')
    .action(async (opts: { demo: boolean; port: string; dataDir?: string; verbose?: boolean }) => {
      let display: DemoDisplay | undefined;
      const say = (line: string) => (display ? display.log(line) : process.stderr.write(`${line}\n`));
      try {
        await setUpHost((line) => say(`dropwarden: ${line}`), process.env);
      } catch (err) {
        if (!(err instanceof PrerequisiteError || err instanceof SetupBuildError)) throw err;
        process.stderr.write(`dropwarden: ${err.message}\n`);
        process.exitCode = err instanceof PrerequisiteError ? EXIT_USAGE : EXIT_FAILED;
        return;
      }
      const stack = new LocalStack({
        env: process.env,
        port: Number(opts.port),
        dataDir: opts.dataDir,
        out: (part, line) => (opts.verbose || worthShowing(line) ? say(`[${part}] ${line}`) : undefined),
      });
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) {
          say('Still stopping: removing every container takes a few seconds…');
          return;
        }
        stopping = true;
        display?.stop();
        display = undefined;
        await stopEveryApp(stack, say).catch((err: Error) => say(`dropwarden: stopping the apps: ${err.message}`));
        say('Stopping the stack…');
        try {
          await stack.stop();
        } catch (err) {
          say(`dropwarden: ${(err as Error).message}`);
          code = EXIT_FAILED;
        }
        process.exit(code);
      };
      process.on('SIGINT', () => void stop(EXIT_OK));
      process.on('SIGTERM', () => void stop(EXIT_OK));
      // The terminal went away: clean up all the same, with nowhere left to print to.
      process.on('SIGHUP', () => {
        for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
        void stop(EXIT_OK);
      });
      try {
        await stack.start();
      } catch (err) {
        say(`dropwarden: ${(err as Error).message}`);
        if (err instanceof AlreadyRunningError) {
          process.exitCode = EXIT_USAGE;
          return;
        }
        await stop(EXIT_FAILED);
        return;
      }
      // Set once every part is up: a part failing before that already fails start().
      stack.onPartExit = (part, code) => {
        say(`dropwarden: the ${part} exited unexpectedly (status ${code}); stopping`);
        void stop(EXIT_FAILED);
      };
      const config = stack.config!;
      const parts = stack.containers!;
      process.stdout.write(
        `dropwarden ready: S3+SQS at ${config.endpoint}, wardend at ${parts.wardenSocket}, agent API at http://${parts.agentApi}, ` +
          `routes ${config.routes} ` +
          '(names: npx dropwarden config --json)\n',
      );
      if (opts.demo) {
        const apps = demoApps(say);
        if (apps.length) {
          say(`Staging and starting ${apps.length} sample app${apps.length === 1 ? '' : 's'}…`);
          display = demoDisplay(apps);
          const outcomes = await runDemo(config, new AgentApi(parts.agentApi), apps, display);
          display = undefined;
          if (stopping) return;
          const width = Math.max(...outcomes.map((o) => o.app.name.length));
          for (const o of outcomes) {
            if (o.url) process.stdout.write(`${o.app.name.padEnd(width)}  ${o.url}\n`);
            else say(`${o.app.name.padEnd(width)}  failed: ${o.error}`);
          }
        }
      }
      process.stdout.write('Serving. `npx dropwarden push PATH` runs your own app; Ctrl-C stops the apps and the stack.\n');
      await new Promise(() => {});
    });
}
