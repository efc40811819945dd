/**
 * The local stand-in for Lambda's SQS event source: long-polls the staging queue and invokes
 * the stager's handler with a real SQSEvent. Records the handler reports in batchItemFailures
 * stay on the queue (visible again after the visibility timeout, to the DLQ after
 * maxReceiveCount); the rest are deleted. While a batch runs, its visibility is extended.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export type SqsHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface WorkerOptions {
  sqs: SQSClient;
  queueUrl: string;
  region: string;
  handler: SqsHandler;
  /** Concurrent batches (Lambda's maximum concurrency). */
  concurrency?: number;
  batchSize?: number;
  log?: (message: string, extra?: Record<string, unknown>) => void;
}

function toRecord(m: Message, queueArn: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? 'dropwarden',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          dataType: v.DataType ?? 'String',
          stringValue: v.StringValue,
          binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export class StagerWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly opts: Required<Omit<WorkerOptions, 'log'>> & Pick<WorkerOptions, 'log'>;

  constructor(opts: WorkerOptions) {
    this.opts = { concurrency: 2, batchSize: 5, ...opts };
  }

  async start(): Promise<void> {
    const { Attributes } = await this.opts.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.opts.queueUrl, AttributeNames: ['QueueArn', 'VisibilityTimeout'] }));
    const arn = Attributes?.QueueArn ?? this.opts.queueUrl;
    const visibility = Number(Attributes?.VisibilityTimeout ?? 30);
    for (let i = 0; i < this.opts.concurrency; i++) this.loops.push(this.poll(arn, visibility));
  }

  /** Stops polling and waits for the batches in flight to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  private async poll(arn: string, visibility: number): Promise<void> {
    const { sqs, queueUrl } = this.opts;
    while (!this.stopping) {
      let messages: Message[] = [];
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: this.opts.batchSize,
            WaitTimeSeconds: 20,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: this.abort.signal },
        );
        messages = out.Messages ?? [];
      } catch (err) {
        if (this.stopping) return;
        this.opts.log?.('Receiving from the staging queue failed; retrying', { error: (err as Error).message });
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (messages.length > 0) await this.runBatch(messages, arn, visibility);
    }
  }

  private async runBatch(messages: Message[], arn: string, visibility: number): Promise<void> {
    const { sqs, queueUrl } = this.opts;
    const entries = (ms: Message[]) => ms.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! }));
    // Keep the batch invisible while it runs, as a Lambda function's timeout would.
    const heartbeat = setInterval(
      () => {
        sqs
          .send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queueUrl,
              Entries: entries(messages).map((e) => ({ ...e, VisibilityTimeout: visibility })),
            }),
          )
          .catch((err) => this.opts.log?.('Extending visibility failed', { error: (err as Error).message }));
      },
      Math.max(1000, (visibility * 1000) / 3),
    );
    let failed = new Set<string>();
    try {
      const event: SQSEvent = { Records: messages.map((m) => toRecord(m, arn, this.opts.region)) };
      const response = await this.opts.handler(event);
      failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    } catch (err) {
      // A thrown handler fails the whole batch, as on Lambda.
      this.opts.log?.('The handler threw; the whole batch will be retried', { error: (err as Error).message });
      failed = new Set(messages.map((m) => m.MessageId!));
    } finally {
      clearInterval(heartbeat);
    }
    const done = messages.filter((m) => !failed.has(m.MessageId!));
    if (done.length > 0) {
      await sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries(done) }))
        .catch((err) => this.opts.log?.('Deleting handled messages failed; they will be redelivered', { error: (err as Error).message }));
    }
  }
}
