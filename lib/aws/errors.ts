/**
 * What an AWS SDK (or network) error is, tested in one place. These say only what happened;
 * what a caller does about it (retry, fail, ignore) is the caller's decision.
 */
import { QueueDoesNotExist } from '@aws-sdk/client-sqs';

interface AwsLike {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: { code?: unknown };
}

const as = (err: unknown): AwsLike | undefined => (err && typeof err === 'object' ? (err as AwsLike) : undefined);
const statusOf = (err: unknown) => as(err)?.$metadata?.httpStatusCode;
const named = (err: unknown, ...names: string[]) => names.includes(as(err)?.name as string);

/** The bucket does not exist (S3 answers 404 for it too, so test this before `isObjectNotFound`'s 404). */
export function isNoSuchBucket(err: unknown): boolean {
  return named(err, 'NoSuchBucket');
}

/** The object is not there: `NoSuchKey` (GET), `NotFound` (HEAD, no body), or a bare 404; never a missing bucket. */
export function isObjectNotFound(err: unknown): boolean {
  if (isNoSuchBucket(err)) return false;
  return named(err, 'NoSuchKey', 'NotFound') || statusOf(err) === 404;
}

export function isAccessDenied(err: unknown): boolean {
  return named(err, 'AccessDenied') || statusOf(err) === 403;
}

/** A conditional request's condition (`If-Match`, `If-None-Match`) did not hold: 412. */
export function isPreconditionFailed(err: unknown): boolean {
  return named(err, 'PreconditionFailed') || statusOf(err) === 412;
}

/** S3 refused a conditional write racing another on the same key: 409. */
export function isConditionalConflict(err: unknown): boolean {
  return named(err, 'ConditionalRequestConflict') || statusOf(err) === 409;
}

/** A ranged GET asked for bytes the object does not have (an empty object's last MiB): 416. */
export function isRangeNotSatisfiable(err: unknown): boolean {
  return named(err, 'InvalidRange') || statusOf(err) === 416;
}

const TRANSIENT_NAMES = [
  'ThrottlingException',
  'Throttling',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ServiceUnavailable',
  'InternalError',
  'RequestThrottled',
  'KMS.ThrottlingException',
];
const TRANSIENT_CODES = ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'];

/** Errors from AWS services or the network that another attempt may not hit (5xx, 429, throttling, resets). */
export function isTransient(err: unknown): boolean {
  const e = as(err);
  if (!e) return false;
  if (e.$retryable) return true;
  const status = statusOf(err);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.includes(e.name)) return true;
  const code = e.code ?? e.cause?.code;
  return typeof code === 'string' && TRANSIENT_CODES.includes(code);
}

/**
 * SQS says the queue does not exist (`QueueDoesNotExist`, `AWS.SimpleQueueService.NonExistentQueue`):
 * for a request's `reply_to` (a private queue its sender deletes when done) this is final.
 */
export function isQueueDoesNotExist(err: unknown): boolean {
  if (err instanceof QueueDoesNotExist) return true;
  const e = err as { name?: unknown; Code?: unknown } | null;
  const names = [e?.name, e?.Code];
  return names.includes('QueueDoesNotExist') || names.includes('AWS.SimpleQueueService.NonExistentQueue');
}
