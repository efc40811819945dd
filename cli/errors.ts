import { CommanderError } from 'commander';

/** Exit codes shared by every command (DESIGN §6). */
export const EXIT_OK = 0;
/** The command failed: staging failed, an instance crashed, an unknown app. */
export const EXIT_FAILED = 1;
/** A usage error: the command line, or the host, cannot be acted on. */
export const EXIT_USAGE = 2;
/** Ended by Ctrl-C (128 + SIGINT), after cleaning up. */
export const EXIT_INTERRUPTED = 130;

/** A command line that cannot be acted on: exit status 2, message on stderr, no stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The exit code for an error a command threw: commander's own (help, version, bad flags), a usage error, or a failure. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === EXIT_OK ? EXIT_OK : EXIT_USAGE;
  if (err instanceof UsageError) return EXIT_USAGE;
  return EXIT_FAILED;
}

/** A flag's value as a whole number in [min, max], or a UsageError naming the flag. */
export function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} ${value}: give a whole number from ${min} to ${max}`);
  return n;
}
