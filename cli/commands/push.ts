import { Command, Option } from 'commander';
import type { HealthCheck, InstanceState } from '../../contracts/instances.ts';
import { routeFor } from '../../contracts/routes.ts';
import { AgentApi, agentApiAddress } from '../agent-api.ts';
import { AppCrashedError, startApp } from '../app-client.ts';
import { EXIT_FAILED, UsageError, wholeNumber } from '../errors.ts';
import { resolveStack } from '../stack.ts';
import { addStageFlags, runStage, type StageFlags } from './stage.ts';

interface PushFlags extends StageFlags {
  instances: string;
  disk?: string;
  healthCheck: string;
  healthCheckTimeout?: string;
}

export function parseHealthCheck(value: string): HealthCheck {
  if (value === 'port' || value === 'none') return { type: value };
  const http = /^http:(\/.*)$/.exec(value);
  if (http) return { type: 'http', path: http[1] };
  throw new UsageError(`--health-check ${value}: give port, none or http:/path`);
}

const describe = (s: InstanceState) => `  [${s.index}] ${s.state}${s.url && s.state === 'RUNNING' ? ` ${s.url}` : ''}${s.reason ? ` (${s.reason})` : ''}\n`;

/** `push PATH`: stage, start, wait until every instance is healthy, print the app's route (DESIGN §6, §7). */
export function pushCommand(): Command {
  const cmd = addStageFlags(new Command('push').description('Stage an app, run it on the running stack, and print its route once healthy'))
    .option('--instances <n>', 'how many instances', '1')
    .option('--disk <mb>', 'disk for each instance in MB')
    .option('--health-check <check>', 'port (TCP connect), http:/path (2xx/3xx) or none', 'port')
    .option('--health-check-timeout <s>', "seconds the health check may take (default: the agent's)");
  const json = cmd.options.find((o) => o.long === '--json')!;
  json.description = "print {app_id, url, droplet, instances:[{instance_id, state, url, host}]} as the last line of stdout (url: the app's route)";
  cmd.addOption(new Option('--timeout <s>', 'seconds to wait for every instance to run').default('300').hideHelp());
  return cmd.action(async (path: string, flags: PushFlags & { timeout: string }) => {
    const instances = wholeNumber('--instances', flags.instances, 1, 100);
    const disk = flags.disk === undefined ? undefined : wholeNumber('--disk', flags.disk, 16, 1024 * 1024);
    const memory = flags.memory === undefined ? undefined : wholeNumber('--memory', flags.memory, 16, 1024 * 1024);
    const healthCheck = parseHealthCheck(flags.healthCheck);
    const healthCheckTimeout = flags.healthCheckTimeout === undefined ? undefined : wholeNumber('--health-check-timeout', flags.healthCheckTimeout, 1, 3600);
    const timeoutSeconds = wholeNumber('--timeout', flags.timeout, 1, 24 * 3600);
    const stack = resolveStack(process.env);

    const staged = await runStage(path, { ...flags, json: false });
    if (staged.error) {
      if (flags.json) process.stdout.write(`${JSON.stringify({ app_id: staged.app_id, error: staged.error })}\n`);
      process.exitCode = EXIT_FAILED;
      return;
    }
    const appId = String(staged.app_id);
    // The route stays the same across crashes, restarts, scaling and re-pushes (DESIGN §7).
    const route = stack.routes ? routeFor(stack.routes, appId) : null;
    process.stderr.write(`Starting ${instances} instance${instances === 1 ? '' : 's'} of ${appId}…\n`);
    let states: InstanceState[];
    try {
      states = await startApp(stack, {
        appId,
        dropletUri: staged.droplet!.uri,
        instances,
        memory,
        disk,
        environment: flags.env,
        healthCheck,
        healthCheckTimeout,
        timeoutSeconds,
        api: new AgentApi(agentApiAddress(process.env)),
        cleanUpOnSigint: true,
        onState: (s) => process.stderr.write(describe(s)),
      });
    } catch (err) {
      if (!(err instanceof AppCrashedError)) throw err;
      const tail = err.state.logs_tail?.trimEnd();
      process.stderr.write(`\n${err.message}${tail ? `\nLast lines of its logs:\n${tail}` : ''}\n`);
      if (flags.json) {
        const { instance_id, state, url, host, reason } = err.state;
        process.stdout.write(`${JSON.stringify({ app_id: appId, url: route, droplet: staged.droplet, instances: [{ instance_id, state, url, host, reason }] })}\n`);
      }
      process.exitCode = EXIT_FAILED;
      return;
    }
    if (flags.json) {
      const out = {
        app_id: appId,
        url: route,
        droplet: staged.droplet,
        instances: states.map(({ instance_id, state, url, host }) => ({ instance_id, state, url, host })),
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else if (route) {
      process.stdout.write(`${route}\n`);
    } else {
      for (const s of states) process.stdout.write(`${s.url}\n`);
    }
  });
}
