import { Command, CommanderError } from 'commander';
import { exitCodeFor } from './errors.ts';
import pkg from '../package.json' with { type: 'json' };

const { version } = pkg;

/** `only`: a subset of the commands (a long-running daemon loads just its own). */
export function buildProgram(commands: Array<() => Command>): Command {
  const program = new Command('dropwarden')
    .description('Stage application source into droplets and run them in warden containers.')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const make of commands) program.addCommand(make().exitOverride());
  return program;
}

export async function main(argv: string[], only?: Array<() => Command>): Promise<void> {
  const program = buildProgram(only ?? (await (await import('./commands/index.ts')).commandsFor(argv)));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Commander has printed its own message (or the help); for the rest, the message alone, no stack trace.
    if (!(err instanceof CommanderError)) process.stderr.write(`dropwarden: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
