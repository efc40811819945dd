import { createInterface } from 'node:readline';
import { WardenClient } from '../client.ts';
import { WardenConnectionError, WardenResponseError } from '../errors.ts';
import { REQUEST_NAMES, parseRequestName } from '../../protocol/message-types.ts';
import { WardenProtocolError } from '../../protocol/errors.ts';
import { runRequest, type Output } from './run-request.ts';
import { describeRequest, parseRequestArgs, RequestArgsError } from './request-args.ts';
import { tokenize, TokenizeError } from './tokenize.ts';

const HELP = [
  'Type a request as `dropwarden warden` takes it, e.g.',
  '  create --grace_time 30',
  "  run --handle H --script 'id'",
  '  help REQUEST   the fields of one request',
  '  quit           leave (or Ctrl-D)',
  `requests: ${REQUEST_NAMES.map((n) => describeRequest(n).split(' ')[0]).join(', ')}`,
].join('\n');

/** The interactive warden shell: one line, one request, on one connection (reopened if it breaks). */
export async function runShell(socketPath: string, io: { input: NodeJS.ReadableStream; interactive: boolean } & Output): Promise<void> {
  let client = await WardenClient.connect(socketPath);
  const rl = createInterface({
    input: io.input,
    output: io.interactive ? io.stdout : undefined,
    prompt: 'warden> ',
    terminal: io.interactive,
  });
  const say = (s: string) => io.stdout.write(`${s}\n`);
  if (io.interactive) rl.prompt();
  try {
    for await (const line of rl) {
      let words: string[];
      try {
        words = tokenize(line);
      } catch (err) {
        if (!(err instanceof TokenizeError)) throw err;
        io.stderr.write(`error: ${err.message}\n`);
        words = [];
      }
      const [first] = words;
      if (first === 'quit' || first === 'exit') break;
      if (first === 'help' || first === '?') {
        const name = words[1] ? parseRequestName(words[1]) : undefined;
        say(name ? describeRequest(name) : HELP);
      } else if (first) {
        try {
          if (client.closed) client = await WardenClient.connect(socketPath);
          await runRequest(client, parseRequestArgs(words), io);
        } catch (err) {
          const known = [RequestArgsError, WardenResponseError, WardenConnectionError, WardenProtocolError];
          if (!known.some((k) => err instanceof k)) throw err;
          io.stderr.write(`error: ${(err as Error).message}\n`);
        }
      }
      if (io.interactive) rl.prompt();
    }
  } finally {
    rl.close();
    client.close();
  }
}
