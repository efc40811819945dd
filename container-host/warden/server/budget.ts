import { WardenProtocolError } from '../protocol/errors.ts';

/**
 * The request bytes wardend holds for all its connections together: partial frames being read
 * and frames read but not yet answered. Each connection may hold up to `maxFrameBytes`, so
 * without a sum a few hostile clients could make wardend hold gigabytes.
 */
export class FrameBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` or throws FrameBudgetError, taking nothing. */
  take(bytes: number): void {
    if (this.#used + bytes > this.limit) throw new FrameBudgetError(bytes, this.#used, this.limit);
    this.#used += bytes;
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** A frame that would take the bytes held across connections over `maxBufferedBytes`. */
export class FrameBudgetError extends WardenProtocolError {
  override name = 'FrameBudgetError';
  constructor(bytes: number, used: number, limit: number) {
    super(
      `wardend is busy: a frame of ${bytes} bytes would take the request bytes held across all connections ` +
        `to ${used + bytes}, over maxBufferedBytes (${limit}); send less per request, or try again later`,
    );
  }
}
