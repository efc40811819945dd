/**
 * Phase 5: put the droplet where the request asked (or at its content address), streamed
 * from the packed file in parts. A multipart upload that fails is aborted, so no partial
 * droplet is ever visible; an object already at a content address is not uploaded again.
 */
import { createReadStream } from 'node:fs';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parseObjectUri, redactUri } from '../../../lib/aws/uri.ts';
import { isObjectNotFound } from '../../../lib/aws/errors.ts';
import { type UrlPolicy, publicRequest } from '../../../lib/net/public-http.ts';
import { HttpStatusError, PhaseError, classify } from '../errors.ts';
import type { PackedDroplet } from './pack.ts';

export interface UploadInput {
  droplet: PackedDroplet;
  uri: string;
  s3: S3Client;
  /** What an https:// upload_uri may reach (public addresses only, but in tests). */
  urls: UrlPolicy;
  partSizeBytes: number;
  concurrency: number;
  /** The key names the content (sha256): an existing object there is this droplet already. */
  contentAddressed: boolean;
  signal: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
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
    if (location.kind === 'http') {
      const body = createReadStream(input.droplet.path);
      // Public addresses only; a redirect is not followed (lib/net/public-http.ts).
      const res = await publicRequest(location.url, {
        method: 'PUT',
        body,
        headers: { 'content-length': String(input.droplet.size), 'content-type': 'application/gzip' },
        signal: input.signal,
        policy: input.urls,
        shown: (u) => redactUri(u.href),
      }).finally(() => body.destroy());
      res.body.resume();
      if (res.status < 200 || res.status > 299) throw new HttpStatusError('PUT', shown, res.status); // judged by classify
      return { skipped: false };
    }
    if (input.contentAddressed && (await exists(input.s3, location.bucket, location.key, input.droplet.size))) {
      return { skipped: true };
    }
    const up = new Upload({
      client: input.s3,
      params: {
        Bucket: location.bucket,
        Key: location.key,
        // lib-storage joins chunks until they exceed a part: small chunks keep each part's
        // buffer close to the part size (1 MiB chunks made 7 MiB buffers for 6 MiB parts).
        Body: createReadStream(input.droplet.path, { highWaterMark: 256 * 1024 }),
        ContentType: 'application/gzip',
        ContentLength: input.droplet.size,
        Metadata: { sha256: input.droplet.sha256, sha1: input.droplet.sha1 },
      },
      partSize: input.partSizeBytes,
      queueSize: input.concurrency,
      leavePartsOnError: false,
    });
    up.on('httpUploadProgress', (p) => input.onProgress?.(p.loaded ?? 0, input.droplet.size));
    const onAbort = () => void up.abort().catch(() => {});
    input.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await up.done();
    } finally {
      input.signal.removeEventListener('abort', onAbort);
    }
    return { skipped: false };
  } catch (err) {
    throw classify(err, { phase: 'upload', object: shown, signal: input.signal });
  }
}

/** An object of `size` bytes is at `key` (a content address: it is this droplet already). */
export async function exists(s3: S3Client, bucket: string, key: string, size: number): Promise<boolean> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength === size;
  } catch (err) {
    if (isObjectNotFound(err)) return false;
    throw err;
  }
}
