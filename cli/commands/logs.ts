import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'commander';
import { AgentApi, agentApiAddress } from '../agent-api.ts';
import { EXIT_FAILED, EXIT_OK, UsageError } from '../errors.ts';

/** `logs APP [--follow]`: an app's run logs (stdout.log / stderr.log) from the agent's API. */
export function logsCommand(): Command {
  return new Command('logs')
    .description("Show an app's run logs; --follow keeps printing what its instances write")
    .argument('<app>', 'app id (see dropwarden apps)')
    .option('-f, --follow', 'keep the log open and print new lines as they come')
    .option('--index <i>', 'only this instance index')
    .addOption(new Option('--stream <which>', 'which log').choices(['stdout', 'stderr', 'all']).default('all'))
    .option('--lines <n>', 'how many of the last lines', '100')
    .action(async (appId: string, opts: { follow?: boolean; index?: string; stream: 'stdout' | 'stderr' | 'all'; lines: string }) => {
      const lines = Number(opts.lines);
      if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`--lines ${opts.lines}: give a whole number`);
      const index = opts.index === undefined ? undefined : Number(opts.index);
      if (index !== undefined && (!Number.isInteger(index) || index < 0)) throw new UsageError(`--index ${opts.index}: give an instance index (0, 1, …)`);
      const api = new AgentApi(agentApiAddress(process.env));
      const body = await api.logs(appId, { stream: opts.stream, lines, follow: opts.follow, index });
      if ('missing' in body) {
        process.stderr.write(`dropwarden: the agent at ${api.address} says: ${body.missing} (see dropwarden apps)\n`);
        process.exitCode = EXIT_FAILED;
        return;
      }
      // Ctrl-C is how a user ends --follow: not an error.
      process.once('SIGINT', () => process.exit(EXIT_OK));
      await pipeline(body, process.stdout, { end: false });
    });
}
