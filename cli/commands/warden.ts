import { Command } from 'commander';
import { WardenClient } from '../../container-host/warden/client/client.ts';
import { parseRequestArgs, RequestArgsError, runRequest, runShell } from '../../container-host/warden/client/shell/index.ts';
import { DEFAULT_SOCKET_PATH } from '../../container-host/warden/protocol/constants.ts';
import { readRunningStack, stateDir } from '../../local/state.ts';
import { SETTING } from '../../contracts/settings.ts';
import { UsageError } from '../errors.ts';

/** --socket, else $DROPWARDEN_WARDEN_SOCKET, else the running `up` stack's wardend, else the default. */
export function wardenSocket(given: string | undefined, env: NodeJS.ProcessEnv): string {
  return given || env[SETTING.wardenSocket] || readRunningStack(stateDir(env))?.warden_socket || DEFAULT_SOCKET_PATH;
}

/** `dropwarden warden [--socket S] [REQUEST --field value …]` (DESIGN §6). */
export function wardenCommand(): Command {
  return new Command('warden')
    .description('Send one warden request (e.g. `create --grace_time 30`, `run --handle H --script id`), or open a shell')
    .option('--socket <path>', `wardend socket (default: $DROPWARDEN_WARDEN_SOCKET, else the running \`up\` stack's, else ${DEFAULT_SOCKET_PATH})`)
    .option('--json', 'print answers as JSON (bytes as text, or {"base64": …} when not UTF-8)')
    .argument('[request]', 'a request of DESIGN §5: create, stop, destroy, info, spawn, link, run, stream, net_in, …')
    .argument('[fields...]', '--field value pairs, named as in §5')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (request: string | undefined, fields: string[], opts: { socket?: string; json?: boolean }) => {
      const socket = wardenSocket(opts.socket, process.env);
      const out = { stdout: process.stdout, stderr: process.stderr, json: opts.json ?? false };
      if (!request) {
        await runShell(socket, { ...out, input: process.stdin, interactive: process.stdin.isTTY === true });
        return;
      }
      let parsed;
      try {
        parsed = parseRequestArgs([request, ...fields]);
      } catch (err) {
        if (err instanceof RequestArgsError) throw new UsageError(err.message);
        throw err;
      }
      const client = await WardenClient.connect(socket);
      try {
        await runRequest(client, parsed, out);
      } finally {
        client.close();
      }
    });
}
