/**
 * Idempotency: one droplet and one result per request_id, even when SQS delivers a request
 * twice or upstream sends it twice, concurrently or not. A claim object per request in S3,
 * written with conditional puts (If-None-Match / If-Match), records who is staging it and,
 * once done, the result that was sent.
 *
 *   absent ──claim──► staging ──task──► result (unsent) ──send──► sent
 *
 * The owner renews its claim while it stages (a short lease); a crashed owner's claim
 * expires within one lease, and the next delivery takes it over.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { StagingResult } from '../../contracts/staging.ts';
import { isConditionalConflict, isObjectNotFound, isPreconditionFailed } from '../../lib/aws/errors.ts';

export type ClaimState =
  | { state: 'staging'; task_owner: string; expires_at: number }
  | { state: 'result'; result: StagingResult; written_at: number }
  | { state: 'sent'; sent_at: number };

export type ClaimOutcome =
  /** Ours: stage it. */
  | { kind: 'owned'; etag: string }
  /** Already answered: drop the message. */
  | { kind: 'done' }
  /** Staged but maybe not answered (an owner died between the two): send this result. */
  | { kind: 'unsent'; etag: string; result: StagingResult }
  /** Someone else is staging it right now: try again later. */
  | { kind: 'busy'; retryInMs: number };

/** How long a written-but-unsent result is left to its owner before another delivery sends it. */
const UNSENT_GRACE_MS = 10_000;

export interface ClaimStore {
  s3: S3Client;
  bucket: string;
  prefix: string;
}

/** Another writer got there first: its condition failed (412), or it raced one in flight (409). */
const lostRace = (err: unknown) => isPreconditionFailed(err) || isConditionalConflict(err);

export function claimKey(store: ClaimStore, requestId: string): string {
  return `${store.prefix}${createHash('sha256').update(requestId).digest('hex')}.json`;
}

async function put(store: ClaimStore, key: string, body: ClaimState, cond: { ifNoneMatch?: '*'; ifMatch?: string }) {
  const out = await store.s3.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: key,
      Body: JSON.stringify(body),
      ContentType: 'application/json',
      IfNoneMatch: cond.ifNoneMatch,
      IfMatch: cond.ifMatch,
    }),
  );
  return out.ETag ?? '';
}

async function read(store: ClaimStore, key: string): Promise<{ etag: string; claim: ClaimState } | undefined> {
  try {
    const out = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    return { etag: out.ETag ?? '', claim: JSON.parse(await out.Body!.transformToString()) as ClaimState };
  } catch (err) {
    if (isObjectNotFound(err)) return undefined;
    throw err;
  }
}

export async function claim(store: ClaimStore, requestId: string, owner: string, leaseMs: number): Promise<ClaimOutcome> {
  const key = claimKey(store, requestId);
  const mine: ClaimState = { state: 'staging', task_owner: owner, expires_at: Date.now() + leaseMs };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return { kind: 'owned', etag: await put(store, key, mine, { ifNoneMatch: '*' }) };
    } catch (err) {
      if (!lostRace(err)) throw err;
    }
    const current = await read(store, key);
    if (!current) continue; // removed between the two calls: try to claim again
    const { claim: c, etag } = current;
    if (c.state === 'sent') return { kind: 'done' };
    if (c.state === 'result') {
      // The owner writes the result just before sending it: give it time to do so.
      const age = Date.now() - c.written_at;
      if (age < UNSENT_GRACE_MS) return { kind: 'busy', retryInMs: UNSENT_GRACE_MS - age };
      try {
        const taken = await put(store, key, { ...c, written_at: Date.now() }, { ifMatch: etag });
        return { kind: 'unsent', etag: taken, result: c.result };
      } catch (err) {
        if (!lostRace(err)) throw err;
        continue;
      }
    }
    if (c.expires_at > Date.now()) return { kind: 'busy', retryInMs: c.expires_at - Date.now() };
    try {
      return { kind: 'owned', etag: await put(store, key, mine, { ifMatch: etag }) };
    } catch (err) {
      if (!lostRace(err)) throw err; // another taker won: look again
    }
  }
  return { kind: 'busy', retryInMs: 1000 };
}

/**
 * Holds a claim while a task runs: renews the lease every third of it, so that only a live
 * owner keeps a request. `stop()` waits for a renewal in flight and returns the latest etag.
 */
export class ClaimLease {
  private etag: string;
  private timer?: NodeJS.Timeout;
  private renewing: Promise<void> = Promise.resolve();
  private readonly store: ClaimStore;
  private readonly requestId: string;
  private readonly owner: string;
  private readonly leaseMs: number;

  constructor(store: ClaimStore, requestId: string, owner: string, leaseMs: number, etag: string) {
    this.store = store;
    this.requestId = requestId;
    this.owner = owner;
    this.leaseMs = leaseMs;
    this.etag = etag;
  }

  start(onError: (err: Error) => void): void {
    this.timer = setInterval(
      () => {
        this.renewing = this.renewing.then(async () => {
          try {
            const body: ClaimState = { state: 'staging', task_owner: this.owner, expires_at: Date.now() + this.leaseMs };
            this.etag = await put(this.store, claimKey(this.store, this.requestId), body, { ifMatch: this.etag });
          } catch (err) {
            onError(err as Error);
          }
        });
      },
      Math.max(250, this.leaseMs / 3),
    );
  }

  async stop(): Promise<string> {
    clearInterval(this.timer);
    await this.renewing;
    return this.etag;
  }
}

/** Records the result before it is sent, so a crash in between cannot lose it. */
export async function recordResult(store: ClaimStore, requestId: string, etag: string, result: StagingResult): Promise<string> {
  return put(store, claimKey(store, requestId), { state: 'result', result, written_at: Date.now() }, { ifMatch: etag });
}

export async function markSent(store: ClaimStore, requestId: string, etag: string): Promise<void> {
  await put(store, claimKey(store, requestId), { state: 'sent', sent_at: Date.now() }, { ifMatch: etag });
}

/** Gives the claim up after a retryable failure, so the next delivery can stage at once. */
export async function release(store: ClaimStore, requestId: string, etag: string): Promise<void> {
  await put(store, claimKey(store, requestId), { state: 'staging', task_owner: '', expires_at: 0 }, { ifMatch: etag });
}
