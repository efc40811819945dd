/** A real embedded S3+SQS (the emulator, in-process) and a freshly provisioned stack, for tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import type { StackConfig } from '../../lib/stack-config.ts';
import { type EmulatorFault, type EmulatorIntercept, type EmulatorRequest, type RunningEmulator, startEmulator } from '../../local/emulator.ts';
import { provisionStack } from '../../local/provision.ts';

export interface TestStack {
  config: StackConfig;
  emulator: RunningEmulator;
  dir: string;
  /** Sees each request to the emulator before it is handled, until replaced: for fault injection. */
  intercept?: EmulatorIntercept;
  stop(): Promise<void>;
}

export async function startTestStack(opts: { visibilitySeconds?: number; maxReceiveCount?: number } = {}): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), 'dw-stack-'));
  let stack: TestStack | undefined;
  const emulator = await startEmulator({
    port: 0,
    region: 'us-east-1',
    s3StorageDir: join(dir, 's3'),
    intercept: (request) => stack?.intercept?.(request),
  });
  const config = await provisionStack({
    region: 'us-east-1',
    endpoint: emulator.endpoint,
    stagingVisibilitySeconds: opts.visibilitySeconds ?? 30,
    maxReceiveCount: opts.maxReceiveCount,
  });
  stack = {
    config,
    emulator,
    dir,
    async stop() {
      await emulator.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

export async function putApp(config: StackConfig, body: Buffer, key = `test/${randomUUID()}.zip`): Promise<string> {
  await s3Client(config).send(new PutObjectCommand({ Bucket: config.buckets.apps, Key: key, Body: body }));
  return `s3://${config.buckets.apps}/${key}`;
}

export async function sendRaw(config: StackConfig, body: string, queueUrl = config.queues.staging): Promise<string> {
  const out = await sqsClient(config).send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  return out.MessageId!;
}

/** Everything that arrives on a queue within `ms` (or until `until` says stop), deleted as read. */
export async function drain<T = any>(config: StackConfig, queueUrl: string, ms: number, until?: (got: T[]) => boolean): Promise<T[]> {
  const sqs = sqsClient(config);
  const got: T[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const ms2 = out.Messages ?? [];
    if (ms2.length) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: ms2.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      for (const m of ms2) got.push(JSON.parse(m.Body!) as T);
    }
    if (until?.(got)) break;
  }
  return got;
}

/**
 * Holds the first emulator request that `matches` picks (later ones pass) until `release()`,
 * then answers it with `fault` (default: a bare 500); `held` resolves with it.
 */
export function holdFirst(stack: TestStack, matches: (r: EmulatorRequest) => boolean, fault: EmulatorFault = { status: 500, body: '' }) {
  let seen!: (r: EmulatorRequest) => void;
  let release!: () => void;
  const held = new Promise<EmulatorRequest>((r) => (seen = r));
  const released = new Promise<EmulatorFault>((r) => (release = () => r(fault)));
  let holding = false;
  stack.intercept = (r) => {
    if (holding || !matches(r)) return;
    holding = true;
    seen(r);
    return released;
  };
  return { held, release };
}

/** The SQS action and queue of a request to the emulator (SQS's JSON protocol), if it is one. */
export function sqsCall(r: EmulatorRequest): { action: string; queueUrl?: string; body: Record<string, unknown> } | undefined {
  const target = r.headers['x-amz-target'];
  if (typeof target !== 'string' || !target.startsWith('AmazonSQS.')) return undefined;
  const body = (typeof r.body === 'string' ? JSON.parse(r.body) : (r.body ?? {})) as Record<string, unknown>;
  return { action: target.slice('AmazonSQS.'.length), queueUrl: body.QueueUrl as string | undefined, body };
}
