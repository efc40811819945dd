/**
 * How a staging can fail, decided in one place (`classify`). A TerminalError ends the request
 * with a result (the message is deleted); a RetryableError hands the message back to SQS
 * (batchItemFailures) for another try (DESIGN §9, *Retries and the DLQ*). A terminal failure
 * is carried as a `Failure` ({phase, reason}); the v1 error text (DESIGN §3.2) and the
 * `StagingFailures` metric's `Reason` are both rendered from it.
 */
import type { Phase } from '../../contracts/staging.ts';
import { isAccessDenied, isNoSuchBucket, isObjectNotFound, isPreconditionFailed, isTransient } from '../../lib/aws/errors.ts';
import { UrlRefusedError } from '../../lib/net/public-http.ts';

/** The v1 headline for a failure in each phase (DESIGN §3.2). */
export const PHASE_FAILURE: Record<Phase | 'request', string> = {
  request: 'Invalid staging request',
  download: 'Failed downloading app',
  unpack: 'Failed unpacking app',
  stage: 'Staging plugin failed',
  pack: 'Failed creating droplet',
  upload: 'Failed uploading droplet',
};

/** Why a request got an error result: the phase that failed (or the whole task) and a reason the user can act on. */
export type Failure = { phase: Phase | 'request'; reason: string } | { phase: 'timeout'; seconds: number } | { phase: 'internal'; reason: string };

/** The v1 error text after `FAILURE_PREFIX` (DESIGN §3.2). */
export function failureText(f: Failure): string {
  if (f.phase === 'timeout') return `Staging timed out after ${f.seconds} seconds.`;
  if (f.phase === 'internal') return `Internal stager error: ${f.reason}`;
  return `${PHASE_FAILURE[f.phase]}: ${f.reason}`;
}

/** The `Reason` dimension of `StagingFailures` (DESIGN §9, *Telemetry*): the text's headline. */
export function failureMetricReason(f: Failure): string {
  if (f.phase === 'timeout') return failureText(f);
  if (f.phase === 'internal') return 'Internal stager error';
  return PHASE_FAILURE[f.phase];
}

export class TerminalError extends Error {
  override name = 'TerminalError';
  readonly failure: Failure;
  constructor(failure: Failure, options?: { cause?: unknown }) {
    super(failureText(failure), options);
    this.failure = failure;
  }
}

/** A phase (or the request itself) failed for a reason that another try would not change. */
export class PhaseError extends TerminalError {
  override name = 'PhaseError';
  readonly phase: Phase | 'request';
  readonly reason: string;
  constructor(phase: Phase | 'request', reason: string, options?: { cause?: unknown }) {
    super({ phase, reason }, options);
    this.phase = phase;
    this.reason = reason;
  }
}

/** The whole task ran past its deadline. */
export class StagingTimeoutError extends TerminalError {
  override name = 'StagingTimeoutError';
  readonly seconds: number;
  constructor(seconds: number) {
    super({ phase: 'timeout', seconds });
    this.seconds = seconds;
  }
}

/** Throttling, a network blip, a 5xx: worth another delivery of the same message. */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

/** An https:// download or upload answered with a status that is not 2xx. */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  readonly status: number;
  constructor(method: string, shown: string, status: number) {
    super(`${method} ${shown} answered HTTP ${status}`);
    this.status = status;
  }
}

/** What each phase that talks to S3 or a URL says about an object it could not use. */
const OBJECT_WORDS: Partial<Record<Phase, { verb: string; permission: string; http: string; missing?: string; changed?: string }>> = {
  download: {
    verb: 'downloading',
    permission: 's3:GetObject',
    http: 'check that the URL exists and has not expired',
    missing: 'upload the app archive there first',
    changed: 'changed while it was being downloaded: staging it again',
  },
  upload: { verb: 'uploading', permission: 's3:PutObject', http: 'check that the pre-signed URL allows PUT and has not expired' },
};

export interface Where {
  phase: Phase;
  /** The task's deadline (or a phase's own abort): once it fired, its reason is the failure. */
  signal?: AbortSignal;
  /** The object or URL the phase was using, as it may be shown (redacted). */
  object?: string;
  /** The phase's own words for a failure (an fs error, say), tried before the generic rules. */
  describe?: (err: unknown) => Error | undefined;
}

/**
 * The one place a stager error is judged terminal or retryable (DESIGN §9). Returns the error
 * to throw: a TerminalError (a PhaseError naming `where.phase`, or the deadline's
 * StagingTimeoutError), a RetryableError, or the abort reason of `where.signal`.
 */
export function classify(err: unknown, where: Where): Error {
  const { phase, signal, object } = where;
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : (err as Error);
  if (err instanceof TerminalError || err instanceof RetryableError) return err;
  const own = where.describe?.(err);
  if (own) return own;
  const e = err as { name?: string; message?: string } | undefined;
  const message = e?.message ?? String(err);
  if (err instanceof UrlRefusedError) return new PhaseError(phase, err.message);
  const words = OBJECT_WORDS[phase];
  if (err instanceof HttpStatusError && words) {
    // A server's trouble (5xx, 429), or an archive that changed between two ranged GETs (412).
    const { status } = err;
    if (status >= 500 || status === 429 || (words.changed && status === 412)) return new RetryableError(err.message);
    return new PhaseError(phase, `${err.message}: ${words.http}`);
  }
  if (object !== undefined && words) {
    // A missing bucket answers 404 too: it is said before the missing object.
    if (isNoSuchBucket(err)) return new PhaseError(phase, `the bucket of ${object} does not exist`);
    if (words.missing && isObjectNotFound(err)) return new PhaseError(phase, `${object} does not exist: ${words.missing}`);
    if (words.changed && isPreconditionFailed(err)) return new RetryableError(`${object} ${words.changed}`);
    if (isAccessDenied(err)) return new PhaseError(phase, `access to ${object} was denied: grant the stager ${words.permission} on it`);
    if (isTransient(err)) return new RetryableError(`${words.verb} ${object}: ${e?.message ?? e?.name}`);
    return new PhaseError(phase, `${object}: ${message}`, { cause: err });
  }
  if (isTransient(err)) return new RetryableError(`${phase}: ${message}`);
  return new PhaseError(phase, message, { cause: err });
}

/**
 * The failure a task answers with, for an error that reached the task itself; a transient one
 * is thrown back as a RetryableError instead. Anything unexpected (a workspace that cannot be
 * made, say) will not get better by retrying: it is answered as an internal error.
 */
export function failureOf(err: unknown): Failure {
  const retry = asRetryable(err);
  if (retry) throw retry;
  if (err instanceof TerminalError) return err.failure;
  return { phase: 'internal', reason: (err as Error)?.message ?? String(err) };
}

/** The error as a RetryableError when another delivery may succeed (it is one, or it is transient); else undefined. */
export function asRetryable(err: unknown): RetryableError | undefined {
  if (err instanceof RetryableError) return err;
  if (err instanceof TerminalError || !isTransient(err)) return undefined;
  return new RetryableError((err as Error).message);
}
