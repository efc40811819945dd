import { Command } from 'commander';
import { WardenClient } from '../../container-host/warden/client/client.ts';
import { parseRequestArgs, RequestArgsError, runRequest, runShell } from '../../container-host/warden/client/shell/index.ts';
import { DEFAULT_SOCKET_PATH } from '../../container-host/warden/protocol/constants.ts';
import { UsageError } from '../errors.ts';

/** `dropwarden warden [--socket S] [REQUEST --field value …]` (DESIGN §6). */
export function wardenCommand(): Command {
  return new Command('warden')
    .description('Send one warden request (e.g. `create --grace_time 30`, `run --handle H --script id`), or open a shell')
    .option('--socket <path>', 'wardend socket', process.env.DROPWARDEN_WARDEN_SOCKET ?? DEFAULT_SOCKET_PATH)
    .option('--json', 'print answers as JSON (bytes as text, or {"base64": …} when not UTF-8)')
    .argument('[request]', 'a request of DESIGN §5: create, stop, destroy, info, spawn, link, run, stream, net_in, …')
    .argument('[fields...]', '--field value pairs, named as in §5')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (request: string | undefined, fields: string[], opts: { socket: string; json?: boolean }) => {
      const out = { stdout: process.stdout, stderr: process.stderr, json: opts.json ?? false };
      if (!request) {
        await runShell(opts.socket, { ...out, input: process.stdin, interactive: process.stdin.isTTY === true });
        return;
      }
      let parsed;
      try {
        parsed = parseRequestArgs([request, ...fields]);
      } catch (err) {
        if (err instanceof RequestArgsError) throw new UsageError(err.message);
        throw err;
      }
      const client = await WardenClient.connect(opts.socket);
      try {
        await runRequest(client, parsed, out);
      } finally {
        client.close();
      }
    });
}
