import { Command } from 'commander';
import { routeFor } from '../../contracts/routes.ts';
import { resolveStack } from '../stack.ts';
import { AgentApi, agentApiAddress, type AgentApp } from '../agent-api.ts';

/** Rows of text as aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

/** `routes`: the stack's route template (DESIGN §7); without one, the ROUTE column says '-'. */
export function appsTable(apps: AgentApp[], routes?: string): string {
  const rows = [['APP', 'ROUTE', 'INDEX', 'STATE', 'URL', 'INSTANCE', 'SINCE']];
  for (const app of apps) {
    const route = routes ? routeFor(routes, app.app_id) : '-';
    for (const i of [...app.instances].sort((a, b) => a.index - b.index)) {
      rows.push([app.app_id, route, String(i.index), i.state, i.url ?? '-', i.instance_id, i.started_at ?? i.timestamp]);
    }
    if (!app.instances.length) rows.push([app.app_id, route, '-', '-', '-', '-', '-']);
  }
  return table(rows);
}

/** The route template of the stack in use, if it has routes. */
function stackRoutes(): string | undefined {
  try {
    return resolveStack(process.env).routes;
  } catch {
    return undefined; // the agent's API alone (DROPWARDEN_AGENT_API): instances, no routes
  }
}

/** `apps`: the apps and instances the agent runs, from its API. */
export function appsCommand(): Command {
  return new Command('apps')
    .description('List the apps and instances the agent runs, with their states and URLs')
    .option('--json', 'print {"apps":[…]} as the agent\'s API gives it, each with its route')
    .action(async (opts: { json?: boolean }) => {
      const apps = await new AgentApi(agentApiAddress(process.env)).apps();
      const routes = stackRoutes();
      if (opts.json) process.stdout.write(`${JSON.stringify({ apps: apps.map((a) => ({ ...a, route: routes ? routeFor(routes, a.app_id) : null })) })}\n`);
      else if (!apps.length) process.stdout.write('No apps are running (dropwarden push PATH starts one).\n');
      else process.stdout.write(`${appsTable(apps, routes)}\n`);
    });
}
