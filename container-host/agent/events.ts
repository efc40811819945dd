/**
 * InstanceStates out: every state goes to the stack's events queue and, when the request named
 * one, to its `reply_to` queue too. One instance's states reach each queue in the order they
 * happened; a send that keeps failing is logged, never thrown into the instance's life.
 *
 * The events queue is the record: `publish` resolves once a state is there, and the next state
 * of that instance waits for it. A `reply_to` queue belongs to whoever sent the request (the
 * CLI's private queue, deleted once its push is done), so sends to it run beside the events
 * queue's and nobody waits for them: a slow or failing `reply_to` neither holds up the events
 * queue nor the poller. A `reply_to` that does not exist is gone for good: it is logged once and
 * sent nothing more.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { isQueueDoesNotExist } from '../../lib/aws/errors.ts';
import type { InstanceState } from '../../contracts/instances.ts';
import { sleep } from './abort.ts';
import type { AgentLogger } from './log.ts';

const ATTEMPTS = 4;
/** Deleted `reply_to` queues remembered (the CLI names each one afresh, so old ones can go). */
const GONE_KEPT = 1000;

type Chain = Map<string, Promise<void>>;

export class EventPublisher {
  readonly #sqs: SQSClient;
  readonly #eventsQueueUrl: string;
  readonly #log: AgentLogger;
  /** The last events-queue send per instance: the next one waits for it. */
  readonly #tails: Chain = new Map();
  /** The last `reply_to` send per instance: the next one there waits for it, nothing else does. */
  readonly #replyTails: Chain = new Map();
  /** `reply_to` queues found not to exist (insertion order: the oldest is forgotten first). */
  readonly #gone = new Set<string>();

  constructor(opts: { sqs: SQSClient; eventsQueueUrl: string; log: AgentLogger }) {
    this.#sqs = opts.sqs;
    this.#eventsQueueUrl = opts.eventsQueueUrl;
    this.#log = opts.log;
  }

  /**
   * Resolves once sent to the events queue (or given up on, logged). The copy for `replyTo` is
   * sent in the background.
   */
  publish(state: InstanceState, replyTo?: string): Promise<void> {
    const body = JSON.stringify(state);
    if (replyTo && replyTo !== this.#eventsQueueUrl && !this.#gone.has(replyTo)) {
      void this.#chain(this.#replyTails, state.instance_id, () => this.#sendReply(replyTo, body, state));
    }
    return this.#chain(this.#tails, state.instance_id, () => this.#sendEvent(body, state));
  }

  /** To `replyTo` alone (a rejected request's answer: no instance, nothing for the events queue); resolves once sent or given up on. */
  reply(state: InstanceState, replyTo: string): Promise<void> {
    if (replyTo === this.#eventsQueueUrl || this.#gone.has(replyTo)) return Promise.resolve();
    return this.#chain(this.#replyTails, state.instance_id, () => this.#sendReply(replyTo, JSON.stringify(state), state));
  }

  /** Every send started so far, to the events queue and to `reply_to` queues, has finished. */
  async flush(): Promise<void> {
    await Promise.all([...this.#tails.values(), ...this.#replyTails.values()]);
  }

  #chain(tails: Chain, key: string, send: () => Promise<void>): Promise<void> {
    const previous = tails.get(key) ?? Promise.resolve();
    const next = previous.then(send);
    tails.set(key, next);
    void next.finally(() => {
      if (tails.get(key) === next) tails.delete(key);
    });
    return next;
  }

  async #sendEvent(body: string, state: InstanceState): Promise<void> {
    const failure = await this.#send(this.#eventsQueueUrl, body);
    if (failure) {
      this.#log.error('Could not send an instance state to the events queue; it is lost', {
        queue_url: this.#eventsQueueUrl,
        ...ids(state),
        error: failure.message,
      });
    }
  }

  async #sendReply(queueUrl: string, body: string, state: InstanceState): Promise<void> {
    const failure = await this.#send(queueUrl, body, () => this.#gone.has(queueUrl));
    if (!failure) return;
    if (isQueueDoesNotExist(failure)) {
      if (this.#gone.has(queueUrl)) return;
      this.#gone.add(queueUrl);
      if (this.#gone.size > GONE_KEPT) this.#gone.delete(this.#gone.values().next().value!);
      this.#log.info("The request's reply_to queue does not exist (its sender is done with it); no more states go there", {
        queue_url: queueUrl,
        ...ids(state),
      });
      return;
    }
    this.#log.warn("Could not send an instance state to the request's reply_to queue; the events queue has it", {
      queue_url: queueUrl,
      ...ids(state),
      error: failure.message,
    });
  }

  /**
   * Sends, retrying transient failures with a backoff; resolves with the last error when it
   * gives up, at once when the queue does not exist or `cancelled` says to stop.
   */
  async #send(queueUrl: string, body: string, cancelled = () => false): Promise<Error | undefined> {
    for (let attempt = 1; ; attempt++) {
      if (cancelled()) return undefined;
      try {
        await this.#sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
        return undefined;
      } catch (err) {
        if (attempt >= ATTEMPTS || isQueueDoesNotExist(err)) return err as Error;
        await sleep(200 * 2 ** attempt);
      }
    }
  }
}

function ids(state: InstanceState) {
  return { app_id: state.app_id, instance_id: state.instance_id, state: state.state };
}
