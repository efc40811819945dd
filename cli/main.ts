import { Command, CommanderError } from 'commander';
import { UsageError } from './errors.ts';
import pkg from '../package.json' with { type: 'json' };

const { version } = pkg;

/** Exit codes shared by every command (DESIGN §6). */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

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
    if (err instanceof CommanderError) {
      // --help / --version exit 0; every other parse error is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`dropwarden: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    process.stderr.write(`dropwarden: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
