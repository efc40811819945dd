import { wardenErrorCode, type WardenErrorCode } from '../../../contracts/warden-errors.ts';
import type { ErrorResponse } from '../protocol/types.ts';

/**
 * wardend answered with an ErrorResponse; `message` is the server's text (e.g. `unknown handle`),
 * `code` the stable code it sent in `data` (DESIGN §5): match on the code, not the text.
 */
export class WardenResponseError extends Error {
  override name = 'WardenResponseError';
  readonly request: string;
  readonly data?: string;
  /** Undefined when `data` holds no code this side knows (an older wardend). */
  readonly code?: WardenErrorCode;
  readonly backtrace: string[];
  constructor(request: string, error: ErrorResponse) {
    super(error.message ?? `wardend refused ${request} without saying why`);
    this.request = request;
    this.data = error.data;
    this.code = wardenErrorCode(error.data);
    this.backtrace = error.backtrace ?? [];
  }
}

/** The connection to wardend could not be made or broke before the answer came. */
export class WardenConnectionError extends Error {
  override name = 'WardenConnectionError';
}

/** The answer never came because this side closed the client on purpose (`close()`): wardend is fine. */
export class WardenClientClosedError extends WardenConnectionError {
  override name = 'WardenClientClosedError';
}
