/**
 * A private reply queue (DESIGN §6: `stage` and `push` send their request with a `reply_to` of
 * their own, `dropwarden-cli-…`): created for one request, polled, and deleted when the work
 * is done, whether it succeeded or threw, or on Ctrl-C.
 */
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { EXIT_INTERRUPTED } from './errors.ts';

export interface ReplyQueue {
  url: string;
  /**
   * Waits up to `waitSeconds` for at most `max` messages, deletes them, and gives each body
   * parsed as JSON. A body that is not JSON is dropped: only the stack replies here.
   */
  receive(opts: { waitSeconds: number; max: number }): Promise<unknown[]>;
}

export interface ReplyQueueOptions {
  /** The queue's name; unique per request. */
  name: string;
  /** A person's CLI: on Ctrl-C, delete the queue and exit 130. */
  cleanUpOnSigint?: boolean;
}

export async function withReplyQueue<T>(sqs: SQSClient, opts: ReplyQueueOptions, use: (queue: ReplyQueue) => Promise<T>): Promise<T> {
  const created = sqs.send(new CreateQueueCommand({ QueueName: opts.name }));
  // The handler is in place before the queue exists: a Ctrl-C while it is being created still
  // deletes it (once it is there) and exits 130, instead of leaving it behind.
  const removeCreated = () =>
    created.then(
      (r) => (r.QueueUrl ? sqs.send(new DeleteQueueCommand({ QueueUrl: r.QueueUrl })).then(() => {}) : undefined),
      () => undefined,
    );
  const onSigint = () =>
    void removeCreated()
      .catch(() => {})
      .finally(() => process.exit(EXIT_INTERRUPTED));
  if (opts.cleanUpOnSigint) process.once('SIGINT', onSigint);
  let url: string | undefined;
  try {
    ({ QueueUrl: url } = await created);
    if (!url) throw new Error(`SQS created the reply queue ${opts.name} but gave no URL`);
  } catch (err) {
    if (opts.cleanUpOnSigint) process.off('SIGINT', onSigint);
    throw err;
  }
  const queueUrl = url;
  const remove = () => sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => {});
  const queue: ReplyQueue = {
    url: queueUrl,
    async receive({ waitSeconds, max }) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: waitSeconds, MaxNumberOfMessages: max }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) return [];
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      return messages.flatMap((m) => {
        try {
          return [JSON.parse(m.Body ?? '') as unknown];
        } catch {
          return [];
        }
      });
    },
  };
  try {
    return await use(queue);
  } finally {
    if (opts.cleanUpOnSigint) process.off('SIGINT', onSigint);
    await remove();
  }
}
