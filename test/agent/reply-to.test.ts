/**
 * A request's reply_to queue that its sender deletes (as `dropwarden push` does once its
 * instances run) costs nothing: later states still reach the events queue at once, the next
 * request is taken at once, and the missing queue is logged once, not retried.
 */
import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../lib/aws/clients.ts';
import { AgentHarness, EventReader, HELLO_APP, type memoryLogger, skipReason } from './harness.ts';

const h = new AgentHarness('reply', { prefix: `ar${process.pid % 10000}`, pool: '100.100.4.0/24', firstPort: 62901 });
let log: ReturnType<typeof memoryLogger>;
let hello: string;

/** How long after `since` the first matching event of `appId` arrived (ms), waiting up to 10 s. */
async function latency(appId: string, since: number, match: Parameters<EventReader['waitFor']>[1], after = 0): Promise<number> {
  await h.events.waitFor(appId, match, { after, ms: 10_000 });
  return Date.now() - since;
}

describe.skipIf(skipReason)('the agent with a reply_to queue deleted under it', () => {
  beforeAll(async () => {
    await h.start();
    [{ log }, hello] = await Promise.all([h.startAgent(), h.droplet('hello', HELLO_APP)]);
  });

  afterAll(async () => {
    await h.close();
  });

  it('sends STOPPED to the events queue at once, takes the next request at once, and logs the missing queue once', async () => {
    const id = `gone-${randomUUID().slice(0, 8)}`;
    const sqs = sqsClient(h.stack.config);
    const { QueueUrl: replyTo } = await sqs.send(new CreateQueueCommand({ QueueName: `reply-${id}` }));
    const replies = new EventReader(h.stack, replyTo!);
    try {
      await h.send({ kind: 'start', app_id: id, droplet_uri: hello, memory: 64, instances: 2, reply_to: replyTo });
      await replies.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 0);
      await replies.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 1);
    } finally {
      await replies.stop();
    }
    // What the CLI does once its push is over.
    await sqs.send(new DeleteQueueCommand({ QueueUrl: replyTo }));

    const before = h.events.of(id).length;
    const stopSent = Date.now();
    await h.send({ kind: 'stop', app_id: id });
    const stopped = await Promise.all([0, 1].map((index) => latency(id, stopSent, (e) => e.state === 'STOPPED' && e.index === index, before)));
    expect(Math.max(...stopped)).toBeLessThan(1500);

    // The poller is not left waiting on the deleted queue: a start right after is taken at once.
    const next = `next-${randomUUID().slice(0, 8)}`;
    const startSent = Date.now();
    await h.send({ kind: 'start', app_id: next, droplet_uri: hello, memory: 64 });
    expect(await latency(next, startSent, (e) => e.state === 'STARTING')).toBeLessThan(1500);
    await h.events.waitFor(next, (e) => e.state === 'RUNNING');
    await h.send({ kind: 'stop', app_id: next });
    await h.events.waitFor(next, (e) => e.state === 'STOPPED');

    const aboutReplyTo = log.entries.filter((e) => e.queue_url === replyTo);
    expect(aboutReplyTo.map((e) => [e.level, e.message])).toEqual([
      ['info', expect.stringContaining('reply_to queue does not exist')],
    ]);
    expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
