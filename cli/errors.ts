/** A command line that cannot be acted on: exit status 2, message on stderr, no stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}
