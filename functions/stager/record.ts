/**
 * One SQS record → at most one staging → exactly one result. Parses and validates the
 * request, takes its claim, runs the task, records and sends the result.
 */
import type { SQSRecord } from 'aws-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '@aws-lambda-powertools/logger';
import { FAILURE_PREFIX, StagingRequest, type StagingResult, describeSchemaError } from '../../contracts/staging.ts';
import { isQueueDoesNotExist } from '../../lib/aws/errors.ts';
import { ClaimLease, type ClaimStore, claim, markSent, recordResult, release } from './claims.ts';
import type { StagerConfig } from './config.ts';
import { type Failure, RetryableError, asRetryable, failureMetricReason, failureText } from './errors.ts';
import { liveLogKey } from '../../contracts/bucket-keys.ts';
import { LiveLog } from './live-log.ts';
import { sendResult } from './reply.ts';
import type { Builder } from './builder/builder.ts';
import { stageRequest } from './stage-request.ts';
import type { TaskProgress } from './task.ts';
import { TaskLog } from './task-log.ts';
import { recordDropletSize, recordFailure, recordPhase } from './telemetry.ts';

export interface RecordDeps {
  config: StagerConfig;
  s3: S3Client;
  sqs: SQSClient;
  logger: Logger;
  /** Who runs the untrusted build (DESIGN §8): the builder function on AWS; absent, this process (with `s3`). */
  builder?: Builder;
  progress?: TaskProgress;
  /** How long to wait in this invocation for a concurrent duplicate to finish. */
  busyWaitMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses the body; a request that cannot be staged gets its error result right away. */
function parse(
  record: SQSRecord,
): { ok: true; request: StagingRequest; requestId: string } | { ok: false; requestId: string; appId: string | number | null; replyTo?: string; reason: string } {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (err) {
    return { ok: false, requestId: record.messageId, appId: null, reason: `the message body is not JSON (${(err as Error).message})` };
  }
  const parsed = StagingRequest.safeParse(body);
  if (parsed.success) {
    return { ok: true, request: parsed.data, requestId: parsed.data.request_id ?? record.messageId };
  }
  const raw = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const replyTo = typeof raw.reply_to === 'string' && /^https?:\/\//.test(raw.reply_to) ? raw.reply_to : undefined;
  return {
    ok: false,
    requestId: typeof raw.request_id === 'string' && raw.request_id ? raw.request_id : record.messageId,
    appId: typeof raw.app_id === 'string' || typeof raw.app_id === 'number' ? raw.app_id : null,
    replyTo,
    reason: `the staging request is invalid: ${describeSchemaError(parsed.error)}`,
  };
}

export async function processRecord(record: SQSRecord, deps: RecordDeps): Promise<void> {
  // The workspace is removed after the result is on its way, never left behind.
  const cleanups: Array<() => Promise<void>> = [];
  try {
    await stageAndAnswer(record, deps, (c) => cleanups.push(c));
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

async function stageAndAnswer(record: SQSRecord, deps: RecordDeps, deferCleanup: (c: () => Promise<void>) => void): Promise<void> {
  const parsed = parse(record);
  const logger = deps.logger.createChild();
  logger.appendPersistentKeys({ request_id: parsed.requestId, message_id: record.messageId });
  const store: ClaimStore = { s3: deps.s3, bucket: deps.config.stack.buckets.droplets, prefix: deps.config.claimsPrefix };
  const replyTo = parsed.ok ? (parsed.request.reply_to ?? deps.config.stack.queues.results) : (parsed.replyTo ?? deps.config.stack.queues.results);
  const leaseMs = deps.config.claimLeaseSeconds * 1000;

  let outcome = await claim(store, parsed.requestId, record.messageId, leaseMs);
  const waitUntil = Date.now() + (deps.busyWaitMs ?? 20_000);
  while (outcome.kind === 'busy' && Date.now() + Math.min(outcome.retryInMs, 500) < waitUntil) {
    await sleep(Math.min(outcome.retryInMs, 500));
    outcome = await claim(store, parsed.requestId, record.messageId, leaseMs);
  }
  if (outcome.kind === 'done') {
    logger.info('Duplicate delivery: this request was already answered; dropping it');
    return;
  }
  if (outcome.kind === 'busy') {
    throw new RetryableError(`request ${parsed.requestId} is being staged by another worker; will look again`);
  }
  if (outcome.kind === 'unsent') {
    logger.info('Sending the result a previous attempt recorded but may not have sent');
    await deliver(outcome.result, outcome.etag);
    return;
  }

  let result: StagingResult;
  let failure: Failure | undefined;
  let claimEtag = outcome.etag;
  if (!parsed.ok) {
    logger.warn('Rejected staging request', { reason: parsed.reason });
    recordFailure('invalid_request');
    result = {
      request_id: parsed.requestId,
      app_id: parsed.appId,
      task_id: record.messageId,
      task_log: '',
      error: FAILURE_PREFIX + failureText({ phase: 'request', reason: parsed.reason }),
      timings_ms: {},
    };
  } else {
    const log = new TaskLog();
    const live = new LiveLog({
      s3: deps.s3,
      bucket: deps.config.stack.buckets.droplets,
      key: liveLogKey(deps.config.liveLogPrefix, parsed.requestId),
      text: () => log.toString(),
      onError: (err) => logger.debug('Publishing the live log failed', { error: err.message }),
    });
    log.onLine((line) => {
      logger.debug(line);
      live.touch();
    });
    const lease = new ClaimLease(store, parsed.requestId, record.messageId, leaseMs, outcome.etag);
    lease.start((err) => logger.warn('Renewing the request claim failed', { error: err.message }));
    try {
      logger.info('Staging', { app_id: parsed.request.app_id });
      ({ result, failure } = await stageRequest(parsed.request, parsed.requestId, {
        config: deps.config,
        s3: deps.s3,
        builder: deps.builder,
        log,
        progress: deps.progress,
        onPhaseTimed: recordPhase,
        deferCleanup,
      }));
    } catch (err) {
      // Retryable: give the claim back so the next delivery can stage at once.
      await release(store, parsed.requestId, await lease.stop()).catch(() => {});
      const retry = asRetryable(err);
      if (retry) {
        logger.warn('Staging hit a transient failure; the message will be retried', { error: retry.message });
        throw retry;
      }
      throw err;
    } finally {
      claimEtag = await lease.stop();
      await live.close();
    }
    if (result.error) {
      logger.warn('Staging failed', { error: result.error, timings_ms: result.timings_ms });
      recordFailure(failure ? failureMetricReason(failure) : 'unknown');
    } else {
      logger.info('Staged', { droplet: result.droplet, timings_ms: result.timings_ms });
      recordDropletSize(result.droplet!.size);
    }
  }
  const etag = await recordResult(store, parsed.requestId, claimEtag, result);
  await deliver(result, etag);

  async function deliver(res: StagingResult, etag: string) {
    try {
      await sendResult(deps.sqs, replyTo, res);
    } catch (err) {
      // A request's own reply_to that no longer exists will not come back (its sender gave up
      // and deleted it): retrying only walks the message to the DLQ. The stack's results queue
      // missing is a broken stack, and is retried.
      if (isQueueDoesNotExist(err) && replyTo !== deps.config.stack.queues.results) {
        logger.warn("The request's reply_to queue does not exist (its sender is gone); the result is dropped", { reply_to: replyTo });
      } else {
        logger.warn('Could not send the result; the message will be retried', { error: (err as Error).message, reply_to: replyTo });
        throw new RetryableError(`sending the result to ${replyTo}: ${(err as Error).message}`);
      }
    }
    await markSent(store, res.request_id, etag).catch((err) => logger.warn('Result sent but not marked as sent', { error: (err as Error).message }));
  }
}
