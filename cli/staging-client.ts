/**
 * What an upstream service does, done for a person: put the app in the apps bucket, send a
 * StagingRequest with a private reply queue, tail the live log, wait for the one result.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { type StagingRequest, StagingResult } from '../contracts/staging.ts';
import { s3Client, sqsClient } from '../lib/aws/clients.ts';
import { parseObjectUri, s3Uri } from '../lib/aws/uri.ts';
import type { StackConfig } from '../lib/stack-config.ts';
import { DEFAULT_LIVE_LOG_PREFIX, liveLogKey } from '../contracts/bucket-keys.ts';
import type { AppArchive } from './app-archive.ts';
import { withReplyQueue } from './reply-queue.ts';

export interface StageOptions {
  appId: string;
  archive: AppArchive;
  properties: StagingRequest['properties'];
  /** Each new task-log line, as it is published. */
  onLog?: (text: string) => void;
  onUploadProgress?: (done: number, total?: number) => void;
  timeoutSeconds?: number;
  liveLogPrefix?: string;
  /** A person's CLI: on Ctrl-C, delete the private reply queue before exiting (EXIT_INTERRUPTED). */
  cleanUpOnSigint?: boolean;
}

export async function uploadApp(stack: StackConfig, appId: string, archive: AppArchive, onProgress?: StageOptions['onUploadProgress']) {
  const key = `${appId}/${randomUUID()}.${archive.kind}`;
  const up = new Upload({
    client: s3Client(stack),
    params: { Bucket: stack.buckets.apps, Key: key, Body: archive.stream, ContentType: 'application/zip' },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
  });
  up.on('httpUploadProgress', (p) => onProgress?.(p.loaded ?? 0, archive.size ?? p.total));
  await up.done();
  return s3Uri(stack.buckets.apps, key);
}

export async function stageApp(stack: StackConfig, opts: StageOptions): Promise<StagingResult> {
  const sqs = sqsClient(stack);
  const s3 = s3Client(stack);
  const downloadUri = await uploadApp(stack, opts.appId, opts.archive, opts.onUploadProgress);
  const requestId = randomUUID();
  return withReplyQueue(sqs, { name: `dropwarden-cli-${requestId}`, cleanUpOnSigint: opts.cleanUpOnSigint }, async (replies) => {
    const request: StagingRequest = {
      request_id: requestId,
      app_id: opts.appId,
      download_uri: downloadUri,
      reply_to: replies.url,
      properties: opts.properties,
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.staging, MessageBody: JSON.stringify(request) }));

    const logKey = liveLogKey(opts.liveLogPrefix ?? DEFAULT_LIVE_LOG_PREFIX, requestId);
    const reader = new LiveLogReader();
    const tail = async () => {
      if (!opts.onLog) return;
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: stack.buckets.droplets, Key: logKey }));
        const fresh = reader.next(await out.Body!.transformToString());
        if (fresh) opts.onLog(fresh);
      } catch {
        // not published yet
      }
    };
    const deadline = Date.now() + (opts.timeoutSeconds ?? 900) * 1000;
    while (Date.now() < deadline) {
      const bodies = await replies.receive({ waitSeconds: opts.onLog ? 1 : 10, max: 1 });
      await tail();
      for (const body of bodies) {
        const parsed = StagingResult.safeParse(body);
        if (!parsed.success || parsed.data.request_id !== requestId) continue; // not our result
        const result = parsed.data;
        const rest = opts.onLog ? reader.next(result.task_log) : '';
        if (rest) opts.onLog!(rest);
        return result;
      }
    }
    throw new Error(`no staging result within ${opts.timeoutSeconds ?? 900} s: is the stager running (dropwarden up)?`);
  });
}

export async function downloadDroplet(stack: StackConfig, uri: string, file: string, onProgress?: (done: number, total?: number) => void) {
  const loc = parseObjectUri(uri);
  if (loc.kind !== 's3') throw new Error(`cannot download ${uri}: only s3:// droplets can be fetched`);
  const out = await s3Client(stack).send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
  let done = 0;
  const body = out.Body as Readable;
  body.on('data', (c: Buffer) => onProgress?.((done += c.length), out.ContentLength));
  await pipeline(body, createWriteStream(file));
}

/**
 * Turns successive copies of a staging's live log into the lines not shown yet. Counted while
 * the log is whole (two lines can share their text and second); once the log has dropped its
 * head to fit, found after the last line shown.
 */
export class LiveLogReader {
  private shown = 0;
  private lastLine: string | undefined;

  next(text: string): string {
    const all = text.split('\n').filter((l) => l);
    const truncated = all[0]?.startsWith('[… ') ?? false;
    const lines = truncated ? all.slice(1) : all;
    const at = !truncated ? this.shown - 1 : this.lastLine === undefined ? -1 : lines.lastIndexOf(this.lastLine);
    const fresh = lines.slice(at + 1);
    this.shown += fresh.length;
    if (fresh.length) this.lastLine = fresh.at(-1);
    return fresh.map((l) => `${l}\n`).join('');
  }
}
