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
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DropletRef } from '../../contracts/staging.ts';
import { s3Uri } from '../../lib/aws/uri.ts';
import type { StagerConfig } from './config.ts';
import { PhaseError, classify } from './errors.ts';
import type { PackedDroplet } from './phases/pack.ts';
import { upload } from './phases/upload.ts';

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

/** Reads the build's droplet into a local file, hashing it as it arrives. */
async function fetchBuilt(input: PublishInput, path: string): Promise<PackedDroplet> {
  const shown = s3Uri(input.config.stack.buckets.droplets, input.buildKey);
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let size = 0;
  try {
    const got = await input.s3.send(new GetObjectCommand({ Bucket: input.config.stack.buckets.droplets, Key: input.buildKey }), { abortSignal: input.signal });
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sha256.update(chunk);
        sha1.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(got.Body as Readable, hashing, createWriteStream(path), { signal: input.signal });
  } catch (err) {
    throw classify(err, { phase: 'upload', object: shown, signal: input.signal });
  }
  return { path, size, sha256: sha256.digest('hex'), sha1: sha1.digest('hex'), entries: 0 };
}

export async function publish(input: PublishInput): Promise<{ droplet: DropletRef; skipped: boolean }> {
  const path = join(input.scratchDir, `publish-${createHash('sha256').update(input.buildKey).digest('hex').slice(0, 16)}.tgz`);
  try {
    const got = await fetchBuilt(input, path);
    const { built } = input;
    if (got.size !== built.size || got.sha256 !== built.sha256 || got.sha1 !== built.sha1) {
      throw new PhaseError(
        'upload',
        `the droplet the build left (${got.size} bytes, sha256 ${got.sha256}) is not the one it reported (${built.size} bytes, sha256 ${built.sha256}): not published`,
      );
    }
    const sent = await upload({
      droplet: got,
      uri: input.uri,
      s3: input.s3,
      urls: input.config.urls,
      partSizeBytes: input.config.partSizeBytes,
      concurrency: input.config.uploadConcurrency,
      contentAddressed: input.contentAddressed,
      signal: input.signal,
      onProgress: input.onProgress,
    });
    return { droplet: { uri: input.uri, sha256: got.sha256, sha1: got.sha1, size: got.size }, skipped: sent.skipped };
  } finally {
    await rm(path, { force: true });
    // The build's copy is not needed once checked (published or refused); the stack expires any left.
    await input.s3.send(new DeleteObjectCommand({ Bucket: input.config.stack.buckets.droplets, Key: input.buildKey })).catch(() => {});
  }
}
