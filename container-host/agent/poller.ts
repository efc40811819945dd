/**
 * The start queue: long-polled while the host has room, parsed with contracts/instances.ts,
 * handed to the agent. A start is deleted once its instances are accepted (STARTING sent); a
 * stop once its instances are stopped; a malformed message at once, with the reason logged (and
 * sent to a start request's reply_to).
 *
 * A full host still looks every few seconds (short polls) so StopRequests reach it; starts it
 * cannot fit go back on the queue for other hosts. A StopRequest for an app this host does not
 * run goes back too, a few times, so that the host running it can take it.
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { RejectedStartAddress, StartQueueMessage, type StartRequest, type StopRequest } from '../../contracts/instances.ts';
import { sleep } from './abort.ts';
import type { Capacity } from './capacity.ts';
import type { AgentLogger } from './log.ts';

/** A full host looks for StopRequests this often. */
const FULL_RECHECK_MS = 5000;
/** A start that does not fit here is hidden this long (other hosts take it meanwhile). */
const NO_ROOM_VISIBILITY_S = 10;
/** A stop for an app not here is shown again after this, for another host … */
const NOT_HERE_VISIBILITY_S = 1;
/** … until it has been received this often; then it is dropped (the start queue's DLQ takes 5). */
const NOT_HERE_RECEIVES = 4;
const BODY_LOGGED = 500;

export interface StartQueueHandlers {
  /** 'no-room': the host cannot fit it now; else resolves once its instances are accepted. */
  start(request: StartRequest): Promise<void> | 'no-room';
  /** undefined: no instance of the app is here; else resolves once they are stopped. */
  stop(request: StopRequest): Promise<void> | undefined;
  /** A malformed start request that names a reply_to: answered there with why (no instance is made). */
  reject(rejected: { replyTo: string; appId: string; error: string }): Promise<void>;
}

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  capacity: Capacity;
  handlers: StartQueueHandlers;
  log: AgentLogger;
  waitSeconds: number;
}

export type Malformed = { error: string; replyTo?: string; appId?: string };

/**
 * Why a body is not a start or stop request, precisely enough to fix the sender; with the
 * reply_to (and app_id) of a start request that has a usable one, to answer it there.
 */
export function explainMalformed(body: string): Malformed | { message: StartRequest | StopRequest } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { error: `the body is not JSON: ${(err as Error).message}` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { error: 'the body is not a JSON object' };
  const { kind } = json as { kind?: unknown };
  if (kind !== 'start' && kind !== 'stop') return { error: `"kind" must be "start" or "stop", not ${JSON.stringify(kind) ?? 'absent'}` };
  const parsed = StartQueueMessage.safeParse(json);
  if (parsed.success) return { message: parsed.data };
  const error = parsed.error.issues.map((i) => `${i.path.join('.') || 'the body'}: ${i.message}`).join('; ');
  const address = RejectedStartAddress.safeParse(json);
  return address.success ? { error, replyTo: address.data.reply_to, appId: address.data.app_id } : { error };
}

export class StartQueuePoller {
  readonly #o: PollerOptions;
  readonly #abort = new AbortController();
  #visibilityS = 30;
  #loop?: Promise<void>;

  constructor(opts: PollerOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    const { Attributes } = await this.#o.sqs.send(new GetQueueAttributesCommand({ QueueUrl: this.#o.queueUrl, AttributeNames: ['VisibilityTimeout'] }));
    this.#visibilityS = Number(Attributes?.VisibilityTimeout ?? 30) || 30;
    this.#loop = this.#poll();
  }

  /**
   * Stops receiving. A receive under way is not cut off: SQS may already have handed it
   * messages, which would then stay hidden for a whole visibility timeout; it is waited for
   * (at most the long-poll wait) and what it got is made visible again. Messages being handled
   * are finished first.
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #poll(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const room = this.#o.capacity.hasRoom();
      if (!room) {
        const changed = new Promise<void>((resolve) => {
          const off = this.#o.capacity.onChange(() => {
            off();
            resolve();
          });
          void sleep(FULL_RECHECK_MS, signal)
            .catch(() => undefined)
            .then(() => {
              off();
              resolve();
            });
        });
        await changed;
        if (signal.aborted) return;
      }
      let messages: Message[];
      try {
        const out = await this.#o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#o.queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: this.#o.capacity.hasRoom() ? this.#o.waitSeconds : 0,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        messages = out.Messages ?? [];
      } catch (err) {
        if (signal.aborted) return;
        this.#o.log.warn('Receiving from the start queue failed; retrying', { error: (err as Error).message });
        await sleep(1000, signal).catch(() => undefined);
        continue;
      }
      if (signal.aborted) {
        await Promise.all(messages.map((m) => this.#hide(m, 0)));
        return;
      }
      await Promise.all(messages.map((m) => this.#handle(m)));
    }
  }

  async #handle(m: Message): Promise<void> {
    const { log } = this.#o;
    const body = m.Body ?? '';
    const parsed = explainMalformed(body);
    if ('error' in parsed) {
      log.error('Malformed message on the start queue: deleted', {
        message_id: m.MessageId,
        error: parsed.error,
        body: body.length > BODY_LOGGED ? `${body.slice(0, BODY_LOGGED)}…` : body,
        ...(parsed.replyTo ? { reply_to: parsed.replyTo } : {}),
      });
      if (parsed.replyTo) await this.#o.handlers.reject({ replyTo: parsed.replyTo, appId: parsed.appId ?? '', error: parsed.error });
      await this.#delete(m);
      return;
    }
    const request = parsed.message;
    // Keep it hidden while it is being handled (a stop may wait out an app's grace period).
    const heartbeat = setInterval(() => void this.#hide(m, this.#visibilityS), Math.max(1000, (this.#visibilityS * 1000) / 3));
    try {
      if (request.kind === 'start') {
        const accepted = this.#o.handlers.start(request);
        if (accepted === 'no-room') {
          log.info('No room for a start request here; leaving it to other hosts', { message_id: m.MessageId, app_id: request.app_id });
          await this.#hide(m, NO_ROOM_VISIBILITY_S);
          return;
        }
        await accepted;
      } else {
        const stopped = this.#o.handlers.stop(request);
        if (!stopped) {
          await this.#notHere(m, request);
          return;
        }
        await stopped;
      }
      await this.#delete(m);
    } catch (err) {
      log.error('Handling a start queue message failed; it will be received again', {
        message_id: m.MessageId,
        kind: request.kind,
        app_id: request.app_id,
        error: (err as Error).message,
      });
    } finally {
      clearInterval(heartbeat);
    }
  }

  async #notHere(m: Message, request: StopRequest): Promise<void> {
    const receives = Number(m.Attributes?.ApproximateReceiveCount ?? 1);
    if (receives >= NOT_HERE_RECEIVES) {
      this.#o.log.warn('Stop request for an app no host took: dropped', {
        message_id: m.MessageId,
        app_id: request.app_id,
        instance_id: request.instance_id,
        receives,
      });
      await this.#delete(m);
      return;
    }
    await this.#hide(m, NOT_HERE_VISIBILITY_S);
  }

  async #hide(m: Message, seconds: number): Promise<void> {
    await this.#o.sqs
      .send(new ChangeMessageVisibilityCommand({ QueueUrl: this.#o.queueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: seconds }))
      .catch((err: Error) => this.#o.log.warn("Changing a message's visibility failed", { message_id: m.MessageId, error: err.message }));
  }

  async #delete(m: Message): Promise<void> {
    await this.#o.sqs
      .send(new DeleteMessageCommand({ QueueUrl: this.#o.queueUrl, ReceiptHandle: m.ReceiptHandle! }))
      .catch((err: Error) => this.#o.log.warn('Deleting a handled message failed; it will be received again', { message_id: m.MessageId, error: err.message }));
  }
}
