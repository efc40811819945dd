/**
 * A request's reply_to queue that its sender deletes (as `dropwarden push` does once its
 * instances run) costs nothing: later states still reach the events queue, and the next request
 * is taken, while a send to the gone queue is still unanswered (nothing waits for it); each
 * instance sends the gone queue once, never retried, and the missing queue is logged once.
 */
import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, DeleteQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../lib/aws/clients.ts';
import { sqsCall } from '../support/aws-stack.ts';
import { AgentHarness, EventReader, HELLO_APP, type memoryLogger, skipReason } from './harness.ts';

const h = new AgentHarness('reply', { prefix: `ar${process.pid % 10000}`, pool: '100.100.4.0/24', firstPort: 62901 });
let log: ReturnType<typeof memoryLogger>;
let hello: string;
/** Answers a send held at the emulator (see below); called again in afterAll, should the test fail holding one. */
let release = (): void => undefined;

describe.skipIf(skipReason)('the agent with a reply_to queue deleted under it', () => {
  beforeAll(async () => {
    await h.start();
    [{ log }, hello] = await Promise.all([h.startAgent(), h.droplet('hello', HELLO_APP)]);
  });

  afterAll(async () => {
    h.stack.intercept = undefined;
    release();
    await h.close();
  });

  it('sends STOPPED to the events queue and takes the next request while a send to the gone queue hangs, sends it once an instance, and logs it once', async () => {
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

    // Every send to the gone queue, counted at the emulator; the first is held unanswered until
    // released below, so whatever arrives meanwhile cannot have waited for it.
    let goneSends = 0;
    let held = false;
    const released = new Promise<void>((r) => (release = r));
    h.stack.intercept = (r) => {
      const call = sqsCall(r);
      if (call?.action !== 'SendMessage' || call.queueUrl !== replyTo) return;
      if (++goneSends > 1) return;
      held = true;
      return released;
    };
    const logged = async () => {
      for (const end = Date.now() + 30_000; !log.entries.some((e) => e.queue_url === replyTo); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() > end) throw new Error('the missing reply_to queue was never logged');
      }
    };

    const before = h.events.of(id).length;
    await h.send({ kind: 'stop', app_id: id });
    await Promise.all([0, 1].map((index) => h.events.waitFor(id, (e) => e.state === 'STOPPED' && e.index === index, { after: before })));
    expect(held).toBe(true);

    // The poller is not left waiting on the deleted queue: a start right after is taken, and
    // runs, while that send is still unanswered.
    const next = `next-${randomUUID().slice(0, 8)}`;
    await h.send({ kind: 'start', app_id: next, droplet_uri: hello, memory: 64 });
    await h.events.waitFor(next, (e) => e.state === 'STARTING');
    await h.events.waitFor(next, (e) => e.state === 'RUNNING');
    // The other instance's first send found the queue gone (logged); it was not retried, and its
    // later states were not sent there.
    await logged();
    expect(goneSends).toBe(2);

    release();
    await h.send({ kind: 'stop', app_id: next });
    await h.events.waitFor(next, (e) => e.state === 'STOPPED');
    // Once answered, the held instance's later states were not sent there either.
    expect(goneSends).toBe(2);

    const aboutReplyTo = log.entries.filter((e) => e.queue_url === replyTo);
    expect(aboutReplyTo.map((e) => [e.level, e.message])).toEqual([['info', expect.stringContaining('reply_to queue does not exist')]]);
    expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
