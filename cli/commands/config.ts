import { Command } from 'commander';
import { resolveStack } from '../stack.ts';
import { stackFromCloudFormation } from '../stack-outputs.ts';

export function configCommand(): Command {
  return new Command('config')
    .description('Print the endpoint, queue URLs and bucket names of the stack in use')
    .option('--json', 'print JSON: {region, endpoint, queues:{…}, buckets:{…}, routes}')
    .option('--stack <name>', "read a deployed stack's CloudFormation outputs instead of the local stack")
    .action(async (opts: { json?: boolean; stack?: string }) => {
      const config = opts.stack ? await stackFromCloudFormation(opts.stack) : resolveStack(process.env);
      const out = { region: config.region, endpoint: config.endpoint ?? null, queues: config.queues, buckets: config.buckets, routes: config.routes ?? null };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const rows: Array<[string, string]> = [
        ['region', out.region],
        ['endpoint', out.endpoint ?? '(AWS)'],
        ...Object.entries(out.queues).map(([k, v]) => [`queue ${k}`, v] as [string, string]),
        ...Object.entries(out.buckets).map(([k, v]) => [`bucket ${k}`, v] as [string, string]),
        ['routes', out.routes ?? '(none)'],
      ];
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    });
}
