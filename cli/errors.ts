/** A command line that cannot be acted on: exit status 2, message on stderr, no stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A flag's value as a whole number in [min, max], or a UsageError naming the flag. */
export function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} ${value}: give a whole number from ${min} to ${max}`);
  return n;
}
