import { Command } from 'commander';
import { AgentApi, type AgentApp } from '../agent-api.ts';

/** Rows of text as aligned columns. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

export function appsTable(apps: AgentApp[]): string {
  const rows = [['APP', 'INDEX', 'STATE', 'URL', 'INSTANCE', 'SINCE']];
  for (const app of apps) {
    for (const i of [...app.instances].sort((a, b) => a.index - b.index)) {
      rows.push([app.app_id, String(i.index), i.state, i.url ?? '-', i.instance_id, i.started_at ?? i.timestamp]);
    }
    if (!app.instances.length) rows.push([app.app_id, '-', '-', '-', '-', '-']);
  }
  return table(rows);
}

/** `apps`: the apps and instances the agent runs, from its API. */
export function appsCommand(): Command {
  return new Command('apps')
    .description('List the apps and instances the agent runs, with their states and URLs')
    .option('--json', 'print {"apps":[…]} as the agent\'s API gives it')
    .action(async (opts: { json?: boolean }) => {
      const apps = await new AgentApi().apps();
      if (opts.json) process.stdout.write(`${JSON.stringify({ apps })}\n`);
      else if (!apps.length) process.stdout.write('No apps are running (dropwarden push PATH starts one).\n');
      else process.stdout.write(`${appsTable(apps)}\n`);
    });
}
