/** The event publisher: the events queue never waits on a request's reply_to queue. */
import { QueueDoesNotExist, type SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import type { InstanceState } from '../../contracts/instances.ts';
import { EventPublisher } from '../../container-host/agent/events.ts';
import { isQueueDoesNotExist } from '../../lib/aws/errors.ts';
import { memoryLogger } from './harness.ts';

const EVENTS = 'http://sqs/000000000000/events';
const REPLY = 'http://sqs/000000000000/reply';

const state = (s: InstanceState['state'], instance_id = 'i1'): InstanceState => ({
  app_id: 'a', instance_id, index: 0, state: s, host: 'h', port: null, url: null, reason: null,
  droplet_uri: 's3://d/k.tgz', restarts: 0, agent: 'agent', timestamp: new Date().toISOString(),
});

/** An SQS client whose sends to REPLY do what `reply` says; it keeps what each queue got. */
function fakeSqs(reply: (attempt: number) => 'ok' | 'throttled' | 'gone') {
  const got = new Map<string, string[]>();
  let replyAttempts = 0;
  const sqs = {
    async send(command: SendMessageCommand) {
      const { QueueUrl, MessageBody } = command.input;
      if (QueueUrl === REPLY) {
        const outcome = reply(++replyAttempts);
        if (outcome === 'gone') {
          throw new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: { httpStatusCode: 400 } });
        }
        if (outcome === 'throttled') throw Object.assign(new Error('slow down'), { name: 'RequestThrottled' });
      }
      got.set(QueueUrl!, [...(got.get(QueueUrl!) ?? []), (JSON.parse(MessageBody!) as InstanceState).state]);
      return {};
    },
  } as unknown as SQSClient;
  return { sqs, got, replyAttempts: () => replyAttempts };
}

describe('the event publisher', () => {
  it('knows SQS\'s "queue does not exist", by class and by code', () => {
    expect(isQueueDoesNotExist(new QueueDoesNotExist({ message: 'x', $metadata: {} }))).toBe(true);
    expect(isQueueDoesNotExist(Object.assign(new Error('x'), { Code: 'AWS.SimpleQueueService.NonExistentQueue' }))).toBe(true);
    expect(isQueueDoesNotExist(new Error('socket hang up'))).toBe(false);
    expect(isQueueDoesNotExist(undefined)).toBe(false);
  });

  it('resolves once the events queue has a state while reply_to is still retried, in order, behind it', async () => {
    const fake = fakeSqs((n) => (n <= 2 ? 'throttled' : 'ok'));
    const log = memoryLogger();
    const events = new EventPublisher({ sqs: fake.sqs, eventsQueueUrl: EVENTS, log });
    const t = Date.now();
    await events.publish(state('STARTING'), REPLY);
    await events.publish(state('RUNNING'), REPLY);
    expect(Date.now() - t).toBeLessThan(200);
    expect(fake.got.get(EVENTS)).toEqual(['STARTING', 'RUNNING']);
    expect(fake.got.get(REPLY)).toBeUndefined();
    await events.flush();
    expect(fake.got.get(REPLY)).toEqual(['STARTING', 'RUNNING']);
    expect(log.entries.filter((e) => e.level !== 'info' && e.level !== 'debug')).toEqual([]);
  });

  it('sends nothing more to a reply_to that does not exist, and says so once', async () => {
    const fake = fakeSqs((n) => (n === 1 ? 'ok' : 'gone'));
    const log = memoryLogger();
    const events = new EventPublisher({ sqs: fake.sqs, eventsQueueUrl: EVENTS, log });
    await events.publish(state('STARTING'), REPLY);
    await events.flush();
    const t = Date.now();
    await Promise.all([events.publish(state('STOPPED'), REPLY), events.publish(state('STOPPED', 'i2'), REPLY)]);
    await events.flush();
    await events.publish(state('STARTING', 'i3'), REPLY);
    await events.flush();
    expect(Date.now() - t).toBeLessThan(200);
    expect(fake.got.get(EVENTS)).toEqual(['STARTING', 'STOPPED', 'STOPPED', 'STARTING']);
    expect(fake.got.get(REPLY)).toEqual(['STARTING']);
    expect(fake.replyAttempts()).toBe(3); // the first send, then one each for the two STOPPED; i3 sends none
    expect(log.entries.filter((e) => e.queue_url === REPLY).map((e) => e.level)).toEqual(['info']);
  });
});
