/**
 * The app's build cache (issue 4 §8): a directory a plugin may fill between stagings (npm's
 * cache, a buildpack's CACHE_DIR), kept as one .tgz per app in the cache bucket
 * (`<app_id>/build-cache.tgz`). Restored before the stage phase, saved after a successful one.
 *
 * - Size-bounded: a cache whose files add up to more than `maxBytes` (DROPWARDEN_CACHE_MAX_BYTES)
 *   is not saved (the app stages cold next time), nor is a stored one restored past that size.
 * - Purgeable: `properties.purge_cache` deletes the stored cache before staging.
 * - Never fails a staging: any error is logged and the staging goes on cold, or unsaved. Only
 *   the deadline's abort passes through.
 * - Reproducible droplets: the cache lives beside the droplet (never packed); only files and
 *   directories come back from it (no links); and its log lines are transient (the live log and
 *   the result, not the droplet's staging.log), as a restored and a cold staging log differently.
 *   The tgz itself is written like a droplet (sorted, fixed mtimes, no owners), so an unchanged
 *   cache has the same sha256 and is not uploaded again.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { create as createTar, extract as extractTar } from 'tar';
import { isObjectNotFound } from '../../lib/aws/errors.ts';
import { DROPLET_MTIME, sortBytewise } from './phases/pack.ts';

export interface CacheOptions {
  s3: S3Client;
  /** The cache bucket; empty: no cache (`dir` is then not made). */
  bucket: string;
  appId: string | number;
  /** Where the cache is unpacked for the plugin: outside the droplet. */
  dir: string;
  maxBytes: number;
  purge: boolean;
  partSizeBytes: number;
  signal: AbortSignal;
  /** Transient lines (see above). */
  log(message: string): void;
}

export interface BuildCache {
  /** The directory for the plugin, or undefined when no cache is configured. */
  readonly dir: string | undefined;
  restore(): Promise<void>;
  save(): Promise<void>;
}

export const cacheKey = (appId: string | number) => `${encodeURIComponent(String(appId))}/build-cache.tgz`;

const MiB = 1024 * 1024;
const size = (n: number) => (n < MiB ? `${n} bytes` : `${(n / MiB).toFixed(1)} MiB`);
// A missing bucket is a misconfiguration, said as such: isObjectNotFound is false for it.
const notFound = isObjectNotFound;

/** Files and directories under `dir`, sorted bytewise depth first, with their total size; other kinds are skipped. */
async function listCache(dir: string): Promise<{ paths: string[]; bytes: number; skipped: string[] }> {
  const paths: string[] = [];
  const skipped: string[] = [];
  let bytes = 0;
  const walk = async (rel: string) => {
    const names = sortBytewise(await readdir(rel ? join(dir, rel) : dir));
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, childRel));
      if (st.isDirectory()) {
        paths.push(childRel);
        await walk(childRel);
      } else if (st.isFile()) {
        paths.push(childRel);
        bytes += st.size;
      } else skipped.push(childRel);
    }
  };
  await walk('');
  return { paths, bytes, skipped };
}

export function buildCache(opts: CacheOptions): BuildCache {
  const key = cacheKey(opts.appId);
  const enabled = opts.bucket !== '';
  /** sha256 of the tgz restored (or of none), to skip uploading an unchanged cache. */
  let restoredSha: string | undefined;

  const guard = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason ?? err;
      opts.log(`Build cache: ${what} failed, staging goes on without it: ${(err as Error).message}`);
    }
  };

  return {
    dir: enabled ? opts.dir : undefined,

    async restore() {
      if (!enabled) return;
      await guard('restoring', async () => {
        await mkdir(opts.dir, { recursive: true });
        if (opts.purge) {
          await opts.s3.send(new DeleteObjectCommand({ Bucket: opts.bucket, Key: key }), { abortSignal: opts.signal });
          opts.log('Build cache purged (properties.purge_cache): staging without it');
          return;
        }
        let body: Readable;
        try {
          const got = await opts.s3.send(new GetObjectCommand({ Bucket: opts.bucket, Key: key }), { abortSignal: opts.signal });
          body = got.Body as Readable;
        } catch (err) {
          if (!notFound(err)) throw err;
          opts.log('Build cache: none saved for this app yet');
          return;
        }
        const hash = createHash('sha256');
        let unpacked = 0;
        let links = 0;
        const tooBig = new AbortController();
        const hashing = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        try {
          await pipeline(
            body,
            hashing,
            extractTar({
              cwd: opts.dir,
              strict: true,
              preserveOwner: false,
              // Files and directories only: a link could lead a plugin's writes out of the cache.
              filter: (_path, entry) => {
                const type = 'type' in entry ? entry.type : entry.isDirectory() ? 'Directory' : 'File';
                if (type !== 'File' && type !== 'OldFile' && type !== 'Directory') {
                  links++;
                  return false;
                }
                unpacked += 'size' in entry ? (entry.size ?? 0) : 0;
                if (unpacked > opts.maxBytes) tooBig.abort();
                return unpacked <= opts.maxBytes;
              },
            }),
            { signal: AbortSignal.any([opts.signal, tooBig.signal]) },
          );
        } catch (err) {
          if (tooBig.signal.aborted && !opts.signal.aborted) err = new Error(`it unpacks to more than ${size(opts.maxBytes)}`);
          // Half a cache is worse than none: the plugin would trust it.
          await rm(opts.dir, { recursive: true, force: true });
          await mkdir(opts.dir, { recursive: true });
          throw err;
        }
        restoredSha = hash.digest('hex');
        opts.log(`Build cache restored: ${size(unpacked)}${links ? ` (${links} links skipped)` : ''}`);
      });
    },

    async save() {
      if (!enabled) return;
      await guard('saving', async () => {
        if (!(await stat(opts.dir).catch(() => undefined))?.isDirectory()) return;
        const { paths, bytes, skipped } = await listCache(opts.dir);
        if (paths.length === 0) {
          if (restoredSha) opts.log('Build cache is now empty: the saved one is kept');
          return;
        }
        if (bytes > opts.maxBytes) {
          opts.log(`Build cache not saved: ${size(bytes)} is over the limit of ${size(opts.maxBytes)}`);
          return;
        }
        const tgz = `${opts.dir}.tgz`;
        const hash = createHash('sha256');
        const hashing = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        const tar = createTar({ cwd: opts.dir, gzip: { level: 6 }, portable: true, mtime: DROPLET_MTIME, noDirRecurse: true, strict: true }, paths);
        try {
          await pipeline(tar as unknown as Readable, hashing, createWriteStream(tgz), { signal: opts.signal });
        } catch (err) {
          await rm(tgz, { force: true });
          throw err;
        }
        const sha256 = hash.digest('hex');
        if (sha256 === restoredSha) {
          await rm(tgz, { force: true });
          opts.log('Build cache unchanged: not uploaded again');
          return;
        }
        const { size: tgzBytes } = await stat(tgz);
        const up = new Upload({
          client: opts.s3,
          params: {
            Bucket: opts.bucket,
            Key: key,
            Body: createReadStream(tgz, { highWaterMark: 256 * 1024 }),
            ContentType: 'application/gzip',
            ContentLength: tgzBytes,
            Metadata: { sha256 },
          },
          partSize: opts.partSizeBytes,
          queueSize: 2,
          leavePartsOnError: false,
        });
        const onAbort = () => void up.abort().catch(() => {});
        opts.signal.addEventListener('abort', onAbort, { once: true });
        try {
          await up.done();
        } finally {
          opts.signal.removeEventListener('abort', onAbort);
          await rm(tgz, { force: true });
        }
        opts.log(`Build cache saved: ${size(bytes)} in ${paths.length} entries${skipped.length ? `, ${skipped.length} links or special files left out` : ''}`);
      });
    },
  };
}
