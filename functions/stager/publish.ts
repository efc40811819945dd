/**
 * After a build (DESIGN §8): the stager reads back what the builder left at its build key,
 * checks its size and hashes against what the builder reported, and only then puts it where the
 * request asked (or at its content address), and removes the build's copy. What a builder
 * uploaded is never published unchecked: a build that reports one droplet and leaves another
 * fails.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DropletRef } from '../../contracts/staging.ts';
import { isPreconditionFailed } from '../../lib/aws/errors.ts';
import { parseObjectUri, s3Uri } from '../../lib/aws/uri.ts';
import type { StagerConfig } from './config.ts';
import { PhaseError, classify } from './errors.ts';
import type { PackedDroplet } from './phases/pack.ts';
import { exists, upload } from './phases/upload.ts';

export interface PublishInput {
  config: StagerConfig;
  s3: S3Client;
  /** Where the builder uploaded it, in the droplets bucket. */
  buildKey: string;
  /** What the builder reported. */
  built: DropletRef;
  /** The request's own upload_uri; else the content address. */
  uri: string;
  contentAddressed: boolean;
  /** A scratch file path's directory. */
  scratchDir: string;
  signal: AbortSignal;
  onProgress?: (bytes: number, total: number) => void;
}

const MAX_COPY_BYTES = 5 * 1024 ** 3;

/** The build key's object: its bytes hashed as they stream (into `file` when given), and its ETag. */
async function readBuilt(input: PublishInput, file?: string): Promise<PackedDroplet & { etag: string }> {
  const shown = s3Uri(input.config.stack.buckets.droplets, input.buildKey);
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let size = 0;
  let etag = '';
  try {
    const got = await input.s3.send(new GetObjectCommand({ Bucket: input.config.stack.buckets.droplets, Key: input.buildKey }), { abortSignal: input.signal });
    etag = got.ETag ?? '';
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sha256.update(chunk);
        sha1.update(chunk);
        size += chunk.length;
        cb(null, file ? chunk : undefined);
      },
    });
    const sink = file ? createWriteStream(file) : new Writable({ write: (_c, _e, cb) => cb() });
    await pipeline(got.Body as Readable, hashing, sink, { signal: input.signal });
  } catch (err) {
    throw classify(err, { phase: 'upload', object: shown, signal: input.signal });
  }
  return { path: file ?? '', size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex'), entries: 0, etag };
}

function check(got: PackedDroplet, built: DropletRef): void {
  if (got.size !== built.size || got.sha256 !== built.sha256 || got.sha1 !== built.sha1) {
    throw new PhaseError(
      'upload',
      `the droplet the build left (${got.size} bytes, sha256 ${got.sha256}) is not the one it reported (${built.size} bytes, sha256 ${built.sha256}): not published`,
    );
  }
}

/**
 * An S3 destination gets a server-side copy of exactly the object that was hashed (its ETag
 * must still match: the build's credentials could write the build key again meanwhile).
 */
async function copyChecked(input: PublishInput, got: PackedDroplet & { etag: string }, to: { bucket: string; key: string }): Promise<boolean> {
  const shown = s3Uri(to.bucket, to.key);
  try {
    if (input.contentAddressed && (await exists(input.s3, to.bucket, to.key, got.size))) return true;
    const from = input.config.stack.buckets.droplets;
    await input.s3.send(
      new CopyObjectCommand({
        Bucket: to.bucket,
        Key: to.key,
        CopySource: `${from}/${encodeURIComponent(input.buildKey).replace(/%2F/g, '/')}`,
        CopySourceIfMatch: got.etag,
        MetadataDirective: 'REPLACE',
        ContentType: 'application/gzip',
        Metadata: { sha256: got.sha256, sha1: got.sha1 },
      }),
      { abortSignal: input.signal },
    );
    return false;
  } catch (err) {
    if (isPreconditionFailed(err)) throw new PhaseError('upload', `the build's droplet changed while it was being checked: not published`);
    throw classify(err, { phase: 'upload', object: shown, signal: input.signal });
  }
}

export async function publish(input: PublishInput): Promise<{ droplet: DropletRef; skipped: boolean }> {
  const path = join(input.scratchDir, `publish-${createHash('sha256').update(input.buildKey).digest('hex').slice(0, 16)}.tgz`);
  const location = parseObjectUri(input.uri);
  const copy = location.kind === 's3' && input.built.size <= MAX_COPY_BYTES;
  try {
    // An https upload_uri (or a droplet too big for one copy) needs the bytes: they go through a
    // local file, so what is uploaded is what was hashed.
    const got = await readBuilt(input, copy ? undefined : path);
    check(got, input.built);
    const skipped =
      copy && location.kind === 's3'
        ? await copyChecked(input, got, location)
        : (
            await upload({
              droplet: got,
              uri: input.uri,
              s3: input.s3,
              urls: input.config.urls,
              partSizeBytes: input.config.partSizeBytes,
              concurrency: input.config.uploadConcurrency,
              contentAddressed: input.contentAddressed,
              signal: input.signal,
              onProgress: input.onProgress,
            })
          ).skipped;
    return { droplet: { uri: input.uri, sha256: got.sha256, sha1: got.sha1, size: got.size }, skipped };
  } finally {
    await rm(path, { force: true });
    // The build's copy is not needed once checked (published or refused); the stack expires any left.
    await input.s3.send(new DeleteObjectCommand({ Bucket: input.config.stack.buckets.droplets, Key: input.buildKey })).catch(() => {});
  }
}
