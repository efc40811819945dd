/**
 * The event publisher: the events queue never waits on a request's reply_to queue (DESIGN §11).
 * Real SQS calls through the @aws-sdk client to the embedded emulator; the only fault injected
 * is the emulator holding, or throttling, what is sent to the reply_to queue.
 */
import { CreateQueueCommand, DeleteQueueCommand, QueueDoesNotExist, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceState } from '../../contracts/instances.ts';
import { EventPublisher } from '../../container-host/agent/events.ts';
import { sqsClient } from '../../lib/aws/clients.ts';
import { isQueueDoesNotExist } from '../../lib/aws/errors.ts';
import type { EmulatorFault } from '../../local/emulator.ts';
import { type TestStack, drain, sqsCall, startTestStack } from '../support/aws-stack.ts';
import { memoryLogger } from './harness.ts';

const THROTTLED: EmulatorFault = {
  status: 400,
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'RequestThrottled;Sender' },
  body: JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'slow down' }),
};

let stack: TestStack;
let n = 0;
beforeAll(async () => {
  stack = await startTestStack();
});
afterEach(() => {
  stack.intercept = undefined;
});
afterAll(async () => {
  await stack?.stop();
});

const state = (s: InstanceState['state'], instance_id = 'i1'): InstanceState => ({
  app_id: 'a',
  instance_id,
  index: 0,
  state: s,
  host: 'h',
  port: null,
  url: null,
  reason: null,
  droplet_uri: 's3://d/k.tgz',
  restarts: 0,
  agent: 'agent',
  timestamp: new Date().toISOString(),
});

/** A fresh events queue and reply_to queue, and a counter of the sends the emulator got for the reply_to. */
async function queues() {
  const sqs = sqsClient(stack.config);
  const id = ++n;
  const events = (await sqs.send(new CreateQueueCommand({ QueueName: `events-${id}` }))).QueueUrl!;
  const reply = (await sqs.send(new CreateQueueCommand({ QueueName: `reply-${id}` }))).QueueUrl!;
  return { sqs, events, reply };
}

const isSendTo = (queueUrl: string) => (r: Parameters<NonNullable<TestStack['intercept']>>[0]) => {
  const call = sqsCall(r);
  return call?.action === 'SendMessage' && call.queueUrl === queueUrl;
};

/** The states on a queue, in the order received, once `count` are there. */
async function statesOn(queueUrl: string, count: number): Promise<InstanceState['state'][]> {
  const got = await drain<InstanceState>(stack.config, queueUrl, 30_000, (g) => g.length >= count);
  return got.map((s) => s.state);
}

describe('the event publisher', () => {
  it('knows SQS\'s "queue does not exist", by class and by code', () => {
    expect(isQueueDoesNotExist(new QueueDoesNotExist({ message: 'x', $metadata: {} }))).toBe(true);
    expect(isQueueDoesNotExist(Object.assign(new Error('x'), { Code: 'AWS.SimpleQueueService.NonExistentQueue' }))).toBe(true);
    expect(isQueueDoesNotExist(new Error('socket hang up'))).toBe(false);
    expect(isQueueDoesNotExist(undefined)).toBe(false);
  });

  it('resolves once the events queue has a state while reply_to is still retried, in order, behind it', async () => {
    const q = await queues();
    // The first send to reply_to is held until the events queue has both states; then it and
    // the next two are throttled (more than the SDK's own retries), then sends go through.
    let release!: () => void;
    const released = new Promise<EmulatorFault>((r) => (release = () => r(THROTTLED)));
    let replySends = 0;
    const toReply = isSendTo(q.reply);
    stack.intercept = (r) => {
      if (!toReply(r)) return;
      replySends++;
      if (replySends === 1) return released;
      if (replySends <= 3) return THROTTLED;
    };
    const log = memoryLogger();
    const events = new EventPublisher({ sqs: q.sqs, eventsQueueUrl: q.events, log });
    // Were publish waiting on reply_to, these would never resolve: the held send is released below.
    await events.publish(state('STARTING'), q.reply);
    await events.publish(state('RUNNING'), q.reply);
    expect(await statesOn(q.events, 2)).toEqual(['STARTING', 'RUNNING']);
    expect(replySends).toBe(1);
    expect((await q.sqs.send(new ReceiveMessageCommand({ QueueUrl: q.reply, WaitTimeSeconds: 0 }))).Messages ?? []).toEqual([]);
    release();
    await events.flush();
    expect(await statesOn(q.reply, 2)).toEqual(['STARTING', 'RUNNING']);
    expect(replySends).toBeGreaterThan(3);
    expect(log.entries.filter((e) => e.level !== 'info' && e.level !== 'debug')).toEqual([]);
  });

  it('sends nothing more to a reply_to that does not exist, and says so once', async () => {
    const q = await queues();
    let replySends = 0;
    const toReply = isSendTo(q.reply);
    stack.intercept = (r) => void (toReply(r) && replySends++);
    const log = memoryLogger();
    const events = new EventPublisher({ sqs: q.sqs, eventsQueueUrl: q.events, log });
    await events.publish(state('STARTING'), q.reply);
    await events.flush();
    expect(await statesOn(q.reply, 1)).toEqual(['STARTING']);
    await q.sqs.send(new DeleteQueueCommand({ QueueUrl: q.reply })); // its sender is done with it
    await Promise.all([events.publish(state('STOPPED'), q.reply), events.publish(state('STOPPED', 'i2'), q.reply)]);
    await events.flush();
    await events.publish(state('STARTING', 'i3'), q.reply);
    await events.flush();
    expect(await statesOn(q.events, 4)).toEqual(['STARTING', 'STOPPED', 'STOPPED', 'STARTING']);
    // The first send, then one each for the two STOPPED (not retried: the queue is gone); i3 sends none.
    expect(replySends).toBe(3);
    expect(log.entries.filter((e) => e.queue_url === q.reply).map((e) => e.level)).toEqual(['info']);
  });
});
