/**
 * The real stager handler fed by the local SQS event source (`StagerWorker`) on a test stack,
 * with its dependencies open to a test (faulty SDK clients), and every invocation's answer kept:
 * which records it handed back to the queue (batchItemFailures) and which it finished.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { sqsClient } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { createHandler, depsFromConfig } from '../../functions/stager/handler.ts';
import type { RecordDeps } from '../../functions/stager/record.ts';
import { StagerWorker } from '../../local/stager-worker.ts';
import type { TestStack } from './aws-stack.ts';
import { until } from './processes.ts';

export interface Invocation {
  /** The request_id (or message id) of each record of the batch. */
  requests: string[];
  /** The request_ids the handler handed back to the queue. */
  retried: string[];
}

export interface RunningStager {
  invocations: Invocation[];
  /** The invocations that had `requestId` in their batch, in order. */
  deliveriesOf(requestId: string): Invocation[];
  /** Resolves once an invocation finished `requestId` (did not hand it back to the queue). */
  finished(requestId: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startStager(stack: TestStack, over: Partial<RecordDeps> = {}, env: Record<string, string> = {}): Promise<RunningStager> {
  const work = mkdtempSync(join(tmpdir(), 'dw-work-'));
  const config = stagerConfigFromEnv({ ...process.env, ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work, ...env });
  const inner = createHandler(() => ({ ...depsFromConfig(config), ...over }));
  const invocations: Invocation[] = [];
  const idOf = (r: SQSEvent['Records'][number]) => {
    try {
      return (JSON.parse(r.body) as { request_id?: string }).request_id ?? r.messageId;
    } catch {
      return r.messageId;
    }
  };
  const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const out = await inner(event);
    const failed = new Set(out.batchItemFailures.map((f) => f.itemIdentifier));
    invocations.push({ requests: event.Records.map(idOf), retried: event.Records.filter((r) => failed.has(r.messageId)).map(idOf) });
    return out;
  };
  const worker = new StagerWorker({
    sqs: sqsClient(stack.config),
    queueUrl: stack.config.queues.staging,
    region: stack.config.region,
    handler,
    concurrency: 2,
    batchSize: 1,
  });
  await worker.start();
  return {
    invocations,
    deliveriesOf: (id) => invocations.filter((i) => i.requests.includes(id)),
    // The result is sent before the handler returns: its answer is recorded just after.
    finished: (id) =>
      until(`the stager to finish ${id}`, () => invocations.some((i) => i.requests.includes(id) && !i.retried.includes(id)) || undefined, 45_000).then(() => {}),
    async stop() {
      await worker.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
