/**
 * How a staging can fail. A TerminalError ends the request with a result (the message is
 * deleted); a RetryableError hands the message back to SQS (batchItemFailures) for another try.
 */
import type { Phase } from '../../contracts/staging.ts';

/** The v1 headline for a failure in each phase (DESIGN §3.2). */
export const PHASE_FAILURE: Record<Phase | 'request', string> = {
  request: 'Invalid staging request',
  download: 'Failed downloading app',
  unpack: 'Failed unpacking app',
  stage: 'Staging plugin failed',
  pack: 'Failed creating droplet',
  upload: 'Failed uploading droplet',
};

export class TerminalError extends Error {
  override name = 'TerminalError';
}

/** A phase failed for a reason that another try would not change. */
export class PhaseError extends TerminalError {
  override name = 'PhaseError';
  readonly phase: Phase;
  readonly reason: string;
  constructor(phase: Phase, reason: string, options?: { cause?: unknown }) {
    super(`${PHASE_FAILURE[phase]}: ${reason}`, options);
    this.phase = phase;
    this.reason = reason;
  }
}

/** The whole task ran past its deadline. */
export class StagingTimeoutError extends TerminalError {
  override name = 'StagingTimeoutError';
  readonly seconds: number;
  constructor(seconds: number) {
    super(`Staging timed out after ${seconds} seconds.`);
    this.seconds = seconds;
  }
}

/** Throttling, a network blip, a 5xx: worth another delivery of the same message. */
export class RetryableError extends Error {
  override name = 'RetryableError';
}

/** Errors from AWS services or the network that another attempt may not hit. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (!e || typeof e !== 'object') return false;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  const names = ['ThrottlingException', 'Throttling', 'SlowDown', 'RequestTimeout', 'RequestTimeoutException',
    'TimeoutError', 'ServiceUnavailable', 'InternalError', 'RequestThrottled', 'KMS.ThrottlingException'];
  if (e.name && names.includes(e.name)) return true;
  const codes = ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET',
    'UND_ERR_CONNECT_TIMEOUT'];
  const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  return code !== undefined && codes.includes(code);
}
