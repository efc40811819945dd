import { Command } from 'commander';
import { AgentApi, agentApiAddress } from '../agent-api.ts';
import { AppNotFoundError, stopApp } from '../app-client.ts';
import { EXIT_FAILED, wholeNumber } from '../errors.ts';
import { resolveStack } from '../stack.ts';

/** `stop APP [--instance ID]`: a StopRequest on the start queue, then wait for STOPPED. */
export function stopCommand(): Command {
  return new Command('stop')
    .description('Stop an app (every instance, or one) and wait until the agent reports it STOPPED')
    .argument('<app>', 'app id (see dropwarden apps)')
    .option('--instance <id>', 'stop only this instance')
    .option('--timeout <s>', 'seconds to wait', '60')
    .option('--json', 'print {app_id, instances:[{instance_id, index, state}]} as the last line of stdout')
    .action(async (appId: string, opts: { instance?: string; timeout: string; json?: boolean }) => {
      const timeoutSeconds = wholeNumber('--timeout', opts.timeout, 1, 24 * 3600);
      const stack = resolveStack(process.env);
      try {
        const stopped = await stopApp(stack, { appId, instanceId: opts.instance, api: new AgentApi(agentApiAddress(process.env)), timeoutSeconds });
        if (opts.json) process.stdout.write(`${JSON.stringify({ app_id: appId, instances: stopped })}\n`);
        else for (const s of stopped) process.stdout.write(`${appId} [${s.index}] ${s.instance_id} ${s.state}\n`);
      } catch (err) {
        if (!(err instanceof AppNotFoundError)) throw err;
        process.stderr.write(`dropwarden: ${err.message}\n`);
        process.exitCode = EXIT_FAILED;
      }
    });
}
