/**
 * Phase 5: put the droplet where the request asked (or at its content address), streamed
 * in parts. A multipart upload that fails is aborted, so no partial droplet is ever visible;
 * an object already at a content address is not uploaded again.
 *
 * When the request names an s3:// destination, the upload reads the droplet while pack is
 * still writing it (a `GrowingFile`), so the two overlap; the object then carries no sha256
 * metadata (not known when the upload starts: the result has it). A content address needs
 * the whole droplet first (its key is the sha256), and a pre-signed PUT needs its length.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parseObjectUri, redactUri } from '../../../lib/aws/uri.ts';
import { PhaseError, RetryableError, isTransient } from '../errors.ts';
import type { PackedDroplet } from './pack.ts';

export type UploadSource =
  /** The whole droplet, packed: its size and hashes are known. */
  | { packed: PackedDroplet }
  /** The droplet as pack writes it (GrowingFile.reader()); s3:// destinations only. */
  | { packing: Readable };

export interface UploadInput {
  source: UploadSource;
  uri: string;
  s3: S3Client;
  partSizeBytes: number;
  concurrency: number;
  /** The key names the content (sha256): an existing object there is this droplet already. */
  contentAddressed: boolean;
  signal: AbortSignal;
  onProgress?: (bytes: number, total?: number) => void;
}

/** Whether the droplet can be uploaded to `uri` while it is being packed. */
export function uploadsWhilePacking(uri: string): boolean {
  try {
    return parseObjectUri(uri).kind === 's3';
  } catch {
    return false; // upload() reports the bad URI
  }
}

export async function upload(input: UploadInput): Promise<{ skipped: boolean }> {
  const shown = redactUri(input.uri);
  let location;
  try {
    location = parseObjectUri(input.uri);
  } catch (err) {
    throw new PhaseError('upload', (err as Error).message);
  }
  try {
    const { source } = input;
    if (location.kind === 'http') {
      if (!('packed' in source)) throw new PhaseError('upload', 'a pre-signed PUT needs the whole droplet first');
      const droplet = source.packed;
      const body = createReadStream(droplet.path);
      const res = await fetch(location.url, {
        method: 'PUT',
        body: body as unknown as ReadableStream,
        headers: { 'content-length': String(droplet.size), 'content-type': 'application/gzip' },
        duplex: 'half',
        signal: input.signal,
      } as RequestInit).finally(() => body.destroy());
      await res.body?.cancel();
      if (!res.ok) {
        const reason = `PUT ${shown} answered HTTP ${res.status}`;
        if (res.status >= 500 || res.status === 429) throw new RetryableError(reason);
        throw new PhaseError('upload', `${reason}: check that the pre-signed URL allows PUT and has not expired`);
      }
      return { skipped: false };
    }
    const packed = 'packed' in source ? source.packed : undefined;
    if (packed && input.contentAddressed && (await exists(input.s3, location.bucket, location.key, packed.size))) {
      return { skipped: true };
    }
    const up = new Upload({
      client: input.s3,
      params: {
        Bucket: location.bucket,
        Key: location.key,
        // lib-storage joins chunks until they exceed a part: small chunks keep each part's
        // buffer close to the part size (1 MiB chunks made 7 MiB buffers for 6 MiB parts).
        Body: packed ? createReadStream(packed.path, { highWaterMark: 256 * 1024 }) : (source as { packing: Readable }).packing,
        ContentType: 'application/gzip',
        ContentLength: packed?.size,
        Metadata: packed ? { sha256: packed.sha256, sha1: packed.sha1 } : undefined,
      },
      partSize: input.partSizeBytes,
      queueSize: input.concurrency,
      leavePartsOnError: false,
    });
    up.on('httpUploadProgress', (p) => input.onProgress?.(p.loaded ?? 0, packed?.size ?? p.total));
    const onAbort = () => void up.abort().catch(() => {});
    input.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await up.done();
    } finally {
      input.signal.removeEventListener('abort', onAbort);
    }
    return { skipped: false };
  } catch (err) {
    if ('packing' in input.source) input.source.packing.destroy();
    if (input.signal.aborted) throw input.signal.reason ?? err;
    if (err instanceof PhaseError || err instanceof RetryableError) throw err;
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchBucket') throw new PhaseError('upload', `the bucket of ${shown} does not exist`);
    if (e.name === 'AccessDenied' || e.$metadata?.httpStatusCode === 403) {
      throw new PhaseError('upload', `access to ${shown} was denied: grant the stager s3:PutObject on it`);
    }
    if (isTransient(err)) throw new RetryableError(`uploading ${shown}: ${e.message ?? e.name}`);
    throw new PhaseError('upload', `${shown}: ${e.message ?? String(err)}`);
  }
}

async function exists(s3: S3Client, bucket: string, key: string, size: number): Promise<boolean> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength === size;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}
