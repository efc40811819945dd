/**
 * InstanceStates out: every state goes to the stack's events queue and, when the request named
 * one, to its `reply_to` queue too. One instance's states are sent in the order they happened;
 * a send that keeps failing is logged, never thrown into the instance's life.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { InstanceState } from '../../contracts/instances.ts';
import { sleep } from './abort.ts';
import type { AgentLogger } from './log.ts';

const ATTEMPTS = 4;

export class EventPublisher {
  readonly #sqs: SQSClient;
  readonly #eventsQueueUrl: string;
  readonly #log: AgentLogger;
  /** The last send per instance: the next one waits for it. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(opts: { sqs: SQSClient; eventsQueueUrl: string; log: AgentLogger }) {
    this.#sqs = opts.sqs;
    this.#eventsQueueUrl = opts.eventsQueueUrl;
    this.#log = opts.log;
  }

  /** Resolves once sent everywhere (or given up on, logged). */
  publish(state: InstanceState, replyTo?: string): Promise<void> {
    const key = state.instance_id;
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.#sendAll(state, replyTo));
    this.#tails.set(key, next);
    void next.finally(() => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    });
    return next;
  }

  /** Every send started so far has finished. */
  async flush(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }

  async #sendAll(state: InstanceState, replyTo?: string): Promise<void> {
    const body = JSON.stringify(state);
    const queues = replyTo && replyTo !== this.#eventsQueueUrl ? [this.#eventsQueueUrl, replyTo] : [this.#eventsQueueUrl];
    await Promise.all(queues.map((queueUrl) => this.#send(queueUrl, body, state)));
  }

  async #send(queueUrl: string, body: string, state: InstanceState): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
        return;
      } catch (err) {
        if (attempt >= ATTEMPTS) {
          this.#log.error('Could not send an instance state; it is lost', {
            queue_url: queueUrl, app_id: state.app_id, instance_id: state.instance_id, state: state.state, error: (err as Error).message,
          });
          return;
        }
        await sleep(200 * 2 ** attempt);
      }
    }
  }
}
