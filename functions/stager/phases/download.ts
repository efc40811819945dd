/** Phase 1: fetch the app archive (S3 object or HTTPS URL) into the workspace, streamed. */
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseObjectUri, redactUri } from '../../../lib/aws/uri.ts';
import { PhaseError, RetryableError, isTransient } from '../errors.ts';

export interface DownloadInput {
  uri: string;
  dest: string;
  s3: S3Client;
  /** Archives larger than this are refused before a byte is written. */
  maxBytes: number;
  signal: AbortSignal;
  onProgress?: (bytes: number, total?: number) => void;
}

function counter(onProgress: DownloadInput['onProgress'], total: number | undefined, maxBytes: number) {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) return done(new PhaseError('download', `the app archive is larger than the ${maxBytes}-byte limit`));
      onProgress?.(bytes, total);
      done(null, chunk);
    },
  });
  return { stream, bytes: () => bytes };
}

export async function download(input: DownloadInput): Promise<{ bytes: number }> {
  let location;
  try {
    location = parseObjectUri(input.uri);
  } catch (err) {
    throw new PhaseError('download', (err as Error).message);
  }
  const shown = redactUri(input.uri);
  let body: Readable;
  let total: number | undefined;
  try {
    if (location.kind === 's3') {
      const out = await input.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }), {
        abortSignal: input.signal,
      });
      body = out.Body as Readable;
      total = out.ContentLength;
    } else {
      const res = await fetch(location.url, { signal: input.signal });
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        const reason = `GET ${shown} answered HTTP ${res.status}`;
        if (res.status >= 500 || res.status === 429) throw new RetryableError(reason);
        throw new PhaseError('download', `${reason}: check that the URL exists and has not expired`);
      }
      total = Number(res.headers.get('content-length')) || undefined;
      body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    }
  } catch (err) {
    throw classify(err, shown, input.signal);
  }
  if (total !== undefined && total > input.maxBytes) {
    body.destroy();
    throw new PhaseError('download', `the app archive is ${total} bytes, over the ${input.maxBytes}-byte limit`);
  }
  const count = counter(input.onProgress, total, input.maxBytes);
  try {
    await pipeline(body, count.stream, createWriteStream(input.dest, { flags: 'wx' }), { signal: input.signal });
  } catch (err) {
    throw classify(err, shown, input.signal);
  }
  return { bytes: count.bytes() };
}

function classify(err: unknown, shown: string, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : (err as Error);
  if (err instanceof PhaseError || err instanceof RetryableError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'NoSuchKey' || status === 404) {
    return new PhaseError('download', `${shown} does not exist: upload the app archive there first`);
  }
  if (e.name === 'NoSuchBucket') return new PhaseError('download', `the bucket of ${shown} does not exist`);
  if (e.name === 'AccessDenied' || status === 403) {
    return new PhaseError('download', `access to ${shown} was denied: grant the stager s3:GetObject on it`);
  }
  if (isTransient(err)) return new RetryableError(`downloading ${shown}: ${e.message ?? e.name}`);
  return new PhaseError('download', `${shown}: ${e.message ?? String(err)}`);
}
