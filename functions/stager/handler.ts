/**
 * The stager Lambda function: an SQS event source batch in, `{ batchItemFailures }` out.
 * Records are processed in parallel; a record that fails retryably stays on the queue (and
 * reaches the DLQ after maxReceiveCount); every other record gets exactly one result.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import { detectOrder } from '../../plugins/registry.ts';
import { type StagerConfig, stagerConfigFromEnv } from './config.ts';
import { SETTING } from '../../contracts/settings.ts';
import { lambdaBuilder } from './builder/lambda.ts';
import { resetOrEnd } from './environment-reset.ts';
import { type RecordDeps, processRecord } from './record.ts';
import { logger } from './telemetry.ts';
import { prepareWorkRoot } from './work-root.ts';

export interface HandlerOptions {
  /**
   * After every batch (on Lambda): the execution environment made fit for the next tenant's
   * staging. It runs once the batch's results are sent; a failure is logged, and the
   * environment is then ended, so that Lambda starts the next invocation in a fresh one.
   */
  afterBatch?: (deps: RecordDeps) => Promise<void>;
}

export function createHandler(make: () => RecordDeps, options: HandlerOptions = {}) {
  let ready: Promise<RecordDeps> | undefined;
  const init = async () => {
    const deps = make();
    // An operator's typo in the detection order fails the set-up (retried, then dead-lettered,
    // the log naming the setting), not every request as if the app were at fault.
    detectOrder(deps.config.plugins.settings);
    if (deps.config.urls.allowHttp) {
      logger.warn('DROPWARDEN_TEST_ALLOW_PRIVATE_URLS is set: http:// and private addresses are fetched (tests only)');
    }
    await prepareWorkRoot(deps.config.workRoot);
    return deps;
  };
  return async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    // Concurrent first calls (the local worker runs batches side by side) share one set-up.
    // A failed set-up (a work root that cannot be made) is tried again on the next batch, not kept.
    ready ??= init().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    const deps = await ready;
    if (context) logger.addContext(context);
    // A processor holds its batch's records and failures: one per invocation, never shared.
    const processor = new BatchProcessor(EventType.SQS);
    // Metrics are single-metric EMF lines, flushed as they are recorded: nothing is stored.
    try {
      return await processPartialResponse(event, (record: SQSRecord) => processRecord(record, deps), processor, {
        context,
        throwOnFullBatchFailure: false,
      });
    } finally {
      await options.afterBatch?.(deps);
    }
  };
}

/**
 * Lambda's reset between invocations (DESIGN §8): only the environment is scrubbed there, so
 * what the app's programs left (processes, files in /tmp) must not meet the next staging.
 */
export function resetAfterBatch(deps: RecordDeps, tmpDir = '/tmp'): Promise<void> {
  return resetOrEnd({ tmpDir, workRoot: deps.config.workRoot, log: logger });
}

/** Where the build runs: the builder function when the settings name one (AWS), else this process. */
export interface BuilderSettings {
  functionName?: string;
  dataRoleArn?: string;
}

export function depsFromConfig(config: StagerConfig, builder: BuilderSettings = {}): RecordDeps {
  const s3 = s3Client(config.stack);
  if (Boolean(builder.functionName) !== Boolean(builder.dataRoleArn)) {
    throw new Error(`${SETTING.builderFunction} and ${SETTING.builderDataRoleArn} go together: set both (the stack does) or neither`);
  }
  return {
    config,
    s3,
    sqs: sqsClient(config.stack),
    logger,
    ...(builder.functionName && builder.dataRoleArn ? { builder: lambdaBuilder({ functionName: builder.functionName, dataRoleArn: builder.dataRoleArn, config }) } : {}),
  };
}

/** The Lambda function's entry point, and the stager's composition root: its settings are read here, once. */
export const handler = createHandler(
  () =>
    depsFromConfig(stagerConfigFromEnv(process.env), {
      functionName: process.env[SETTING.builderFunction],
      dataRoleArn: process.env[SETTING.builderDataRoleArn],
    }),
  {
    // On Lambda the namespaces sandbox cannot run (env-only), and environments are reused; with
    // a builder function the stager runs no program of the app's, and the builder resets itself.
    afterBatch: process.env.AWS_LAMBDA_FUNCTION_NAME && !process.env[SETTING.builderFunction] ? (deps) => resetAfterBatch(deps) : undefined,
  },
);
