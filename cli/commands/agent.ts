import { Command } from 'commander';
import { Agent } from '../../container-host/agent/agent.ts';
import { agentConfigFromEnv } from '../../container-host/agent/config.ts';
import { createAgentLogger } from '../../container-host/agent/log.ts';
import { createCapacityReporter } from '../../container-host/agent/fleet.ts';
import { elbRoutesConfigFromEnv } from '../../container-host/agent/routes/elb-config.ts';
import { createElbRegistrar } from '../../container-host/agent/routes/elb-registrar.ts';
import { localRegistrarFromEnv } from '../../container-host/agent/routes/local-router.ts';
import type { RouteRegistrar } from '../../container-host/agent/routes/registrar.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { SETTING } from '../../contracts/settings.ts';
import { EXIT_OK } from '../errors.ts';
import { resolveStack } from '../stack.ts';

/**
 * `dropwarden agent` (DESIGN §6): runs the host agent in the foreground until SIGINT/SIGTERM,
 * which stop polling and exit; the instances keep running for the next agent to adopt.
 */
export function agentCommand(): Command {
  return new Command('agent')
    .description('Run the host agent: start/stop requests from the start queue become health-checked instances in wardend containers')
    .action(async () => {
      // The agent's composition root: its settings are read here, once. On a host the
      // environment names the queues; locally, the running `up` stack does.
      const env = process.env[SETTING.startQueueUrl] ? process.env : { ...stackConfigToEnv(resolveStack(process.env)), ...process.env };
      const config = agentConfigFromEnv(env);
      const log = createAgentLogger();
      // Routes (DESIGN §7): the stack's load balancer on AWS, the local router when `up` names
      // one (DROPWARDEN_ROUTER_ADMIN), else none.
      const elb = elbRoutesConfigFromEnv(env);
      const registrar: RouteRegistrar & { close?: () => void } = elb
        ? createElbRegistrar(elb, { logger: log })
        : localRegistrarFromEnv(env, { source: `${config.agentId}:${config.agentDir}`, log });
      const reporter = createCapacityReporter({ env, region: config.region, endpoint: config.endpoint, agentDir: config.agentDir, log });
      const agent = new Agent(config, { log, registrar, reporter });
      await agent.start();
      process.stdout.write(
        `${JSON.stringify({ ready: true, api: agent.apiAddress ?? null, advertise_host: agent.config.advertiseHost, warden_socket: agent.config.wardenSocket })}\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await agent.stop();
      registrar.close?.();
      process.exit(process.exitCode ?? EXIT_OK);
    });
}
