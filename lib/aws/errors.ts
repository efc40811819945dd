import { QueueDoesNotExist } from '@aws-sdk/client-sqs';

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
