/**
 * The one decision of terminal or retryable (functions/stager/errors.ts, DESIGN §9 *Retries
 * and the DLQ*) and the texts rendered from a failure (DESIGN §3.2), on errors shaped as the
 * @aws-sdk clients raise them.
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import {
  HttpStatusError,
  PhaseError,
  RetryableError,
  StagingTimeoutError,
  asRetryable,
  classify,
  failureMetricReason,
  failureOf,
  failureText,
} from '../../functions/stager/errors.ts';
import { isObjectNotFound } from '../../lib/aws/errors.ts';

const sdk = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message: name });
const object = 's3://apps/a.zip';

describe('classify', () => {
  it('says a missing bucket as such, though it answers 404 like a missing object', () => {
    const err = classify(sdk('NoSuchBucket', 404), { phase: 'download', object });
    expect(err).toBeInstanceOf(PhaseError);
    expect(err.message).toBe('Failed downloading app: the bucket of s3://apps/a.zip does not exist');
    expect(isObjectNotFound(sdk('NoSuchBucket', 404))).toBe(false);
  });

  it('says a missing archive, with what to do', () => {
    for (const e of [sdk('NoSuchKey', 404), sdk('NotFound', 404), sdk('Unknown', 404)]) {
      expect(classify(e, { phase: 'download', object }).message).toBe('Failed downloading app: s3://apps/a.zip does not exist: upload the app archive there first');
    }
  });

  it('names the permission each phase needs', () => {
    expect(classify(sdk('AccessDenied', 403), { phase: 'download', object }).message).toMatch(/grant the stager s3:GetObject on it$/);
    expect(classify(sdk('AccessDenied', 403), { phase: 'upload', object }).message).toMatch(/grant the stager s3:PutObject on it$/);
  });

  it('retries what another try may not hit, and an archive that changed while downloading', () => {
    expect(classify(sdk('SlowDown', 503), { phase: 'download', object })).toEqual(new RetryableError('downloading s3://apps/a.zip: SlowDown'));
    expect(classify(sdk('PreconditionFailed', 412), { phase: 'download', object })).toBeInstanceOf(RetryableError);
    expect(classify(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), { phase: 'stage' })).toEqual(new RetryableError('stage: reset'));
    // A precondition only means "changed" for the download.
    expect(classify(sdk('PreconditionFailed', 412), { phase: 'upload', object })).toBeInstanceOf(PhaseError);
  });

  it("judges an https:// answer by its status: the server's trouble is retried, the rest is the URL's", () => {
    expect(classify(new HttpStatusError('GET', 'https://x/a.zip', 503), { phase: 'download' })).toEqual(new RetryableError('GET https://x/a.zip answered HTTP 503'));
    expect(classify(new HttpStatusError('GET', 'https://x/a.zip', 412), { phase: 'download' })).toBeInstanceOf(RetryableError);
    expect(classify(new HttpStatusError('PUT', 'https://x/d.tgz', 429), { phase: 'upload' })).toBeInstanceOf(RetryableError);
    expect(classify(new HttpStatusError('GET', 'https://x/a.zip', 404), { phase: 'download' }).message).toBe(
      'Failed downloading app: GET https://x/a.zip answered HTTP 404: check that the URL exists and has not expired',
    );
    expect(classify(new HttpStatusError('PUT', 'https://x/d.tgz', 412), { phase: 'upload' }).message).toBe(
      'Failed uploading droplet: PUT https://x/d.tgz answered HTTP 412: check that the pre-signed URL allows PUT and has not expired',
    );
  });

  it('passes the deadline and already-decided errors through, and lets a phase word its own', () => {
    const deadline = new AbortController();
    deadline.abort(new StagingTimeoutError(5));
    expect(classify(new Error('aborted'), { phase: 'pack', signal: deadline.signal })).toBe(deadline.signal.reason);
    const decided = new PhaseError('unpack', 'corrupt');
    expect(classify(decided, { phase: 'stage' })).toBe(decided);
    const own = new PhaseError('pack', 'no space');
    expect(classify(sdk('SlowDown', 503), { phase: 'pack', describe: () => own })).toBe(own);
  });
});

describe('a failure renders the v1 text and the metric Reason', () => {
  it.each([
    [{ phase: 'download', reason: 'x does not exist' }, 'Failed downloading app: x does not exist', 'Failed downloading app'],
    [{ phase: 'request', reason: 'upload_uri …' }, 'Invalid staging request: upload_uri …', 'Invalid staging request'],
    [{ phase: 'timeout', seconds: 840 }, 'Staging timed out after 840 seconds.', 'Staging timed out after 840 seconds.'],
    [{ phase: 'internal', reason: 'ENOTDIR: x' }, 'Internal stager error: ENOTDIR: x', 'Internal stager error'],
  ] as const)('%o', (failure, text, reason) => {
    expect(failureText(failure)).toBe(text);
    expect(failureMetricReason(failure)).toBe(reason);
  });

  it('failureOf: a decided error keeps its failure; a transient one is thrown to be retried; anything else is internal', () => {
    expect(failureOf(new PhaseError('pack', 'p'))).toEqual({ phase: 'pack', reason: 'p' });
    expect(failureOf(new StagingTimeoutError(3))).toEqual({ phase: 'timeout', seconds: 3 });
    expect(() => failureOf(sdk('InternalError', 500))).toThrow(RetryableError);
    expect(failureOf(new Error('boom'))).toEqual({ phase: 'internal', reason: 'boom' });
    // The same judgement the record applies to what escapes the task.
    expect(asRetryable(sdk('SlowDown', 503))).toEqual(new RetryableError('SlowDown'));
    expect(asRetryable(new PhaseError('pack', 'p'))).toBeUndefined();
    expect(asRetryable(new Error('boom'))).toBeUndefined();
  });
});
