/** Sends the one StagingResult of a request to its reply queue. */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { StagingResult } from '../../contracts/staging.ts';

export async function sendResult(sqs: SQSClient, queueUrl: string, result: StagingResult): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(result),
      MessageAttributes: {
        request_id: { DataType: 'String', StringValue: result.request_id },
        outcome: { DataType: 'String', StringValue: result.error ? 'failed' : 'staged' },
      },
    }),
  );
}
