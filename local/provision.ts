/** Creates the stack's buckets and queues on the embedded emulator, through the real SDK. */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { s3Client, sqsClient } from '../lib/aws/clients.ts';
import type { StackConfig } from '../lib/stack-config.ts';

export interface ProvisionOptions {
  region: string;
  endpoint: string;
  /** Staging queue visibility timeout; the worker extends it while a staging runs. */
  stagingVisibilitySeconds?: number;
  maxReceiveCount?: number;
  /** Prefix for names, so several stacks can share one emulator (tests). */
  prefix?: string;
}

export async function provisionStack(opts: ProvisionOptions): Promise<StackConfig> {
  const where = { region: opts.region, endpoint: opts.endpoint };
  const s3 = s3Client(where);
  const sqs = sqsClient(where);
  const p = opts.prefix ?? '';
  const buckets = { apps: `${p}apps`, droplets: `${p}droplets`, cache: `${p}cache` };
  for (const name of Object.values(buckets)) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
    } catch (err: any) {
      if (err?.name !== 'BucketAlreadyOwnedByYou' && err?.name !== 'BucketAlreadyExists') throw err;
    }
  }
  const queue = async (name: string, attributes?: Record<string, string>) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: `${p}${name}`, Attributes: attributes }))).QueueUrl!;
  const dlq = await queue('staging-dlq', { MessageRetentionPeriod: '1209600' });
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }));
  const staging = await queue('staging', {
    VisibilityTimeout: String(opts.stagingVisibilitySeconds ?? 30),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: opts.maxReceiveCount ?? 5 }),
  });
  return {
    region: opts.region,
    endpoint: opts.endpoint,
    queues: {
      staging,
      staging_dlq: dlq,
      results: await queue('results'),
      start: await queue('start'),
      events: await queue('events'),
    },
    buckets,
  };
}
