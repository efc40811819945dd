/**
 * The droplet cache: each droplet URI is fetched once (streamed to a temp file, renamed into
 * place), concurrent requests for the same URI share one download, and later instances and
 * restarts of the app reuse the file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { redactUri } from '../../lib/aws/uri.ts';
import { type Places, checkPlace } from '../../lib/net/places.ts';
import { UrlRefusedError, type UrlPolicy, publicRequest } from '../../lib/net/public-http.ts';
import { raceAbort } from './abort.ts';

/** A droplet could not be fetched. `permanent`: retrying will not help (missing, forbidden, bad URI). */
export class DropletFetchError extends Error {
  override name = 'DropletFetchError';
  readonly uri: string;
  readonly permanent: boolean;
  constructor(uri: string, reason: string, permanent: boolean) {
    super(`cannot fetch droplet ${redactUri(uri)}: ${reason}`);
    this.uri = uri;
    this.permanent = permanent;
  }
}

const PERMANENT_HTTP = new Set([400, 401, 403, 404, 410]);

export class DropletCache {
  readonly dir: string;
  readonly #s3: S3Client;
  readonly #places: Places;
  readonly #urls: UrlPolicy;
  readonly #inFlight = new Map<string, Promise<string>>();

  /** `places` and `urls`: where a droplet_uri may point and what its https:// may reach (AgentConfig). */
  constructor(opts: { dir: string; s3: S3Client; places: Places; urls: UrlPolicy }) {
    this.dir = opts.dir;
    this.#s3 = opts.s3;
    this.#places = opts.places;
    this.#urls = opts.urls;
    mkdirSync(this.dir, { recursive: true });
  }

  pathFor(uri: string): string {
    return join(this.dir, `${createHash('sha256').update(uri).digest('hex')}.tgz`);
  }

  /** The droplet's local path, fetched first if it is not cached. */
  fetch(uri: string, signal?: AbortSignal): Promise<string> {
    const path = this.pathFor(uri);
    if (existsSync(path)) return Promise.resolve(path);
    let pending = this.#inFlight.get(uri);
    if (!pending) {
      // One download serves every waiter, so one waiter's abort must not cut it.
      pending = this.#download(uri, path).finally(() => this.#inFlight.delete(uri));
      this.#inFlight.set(uri, pending);
    }
    return signal ? raceAbort(pending, signal) : pending;
  }

  /** Removes cached droplets whose URI is not in `keep` (those of instances still here). */
  async prune(keep: Iterable<string>): Promise<void> {
    const wanted = new Set([...keep].map((uri) => this.pathFor(uri)));
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith('.tgz') && !wanted.has(path)) await rm(path, { force: true });
    }
  }

  async #download(uri: string, path: string): Promise<string> {
    const body = await this.#open(uri);
    const part = `${path}.${randomBytes(4).toString('hex')}.part`;
    try {
      await pipeline(body, createWriteStream(part, { flags: 'wx' }));
      await rename(part, path);
    } catch (err) {
      await rm(part, { force: true });
      throw new DropletFetchError(uri, `the download broke off: ${(err as Error).message}`, false);
    }
    return path;
  }

  async #open(uri: string): Promise<Readable> {
    const place = checkPlace(uri, this.#places, 'DROPWARDEN_DROPLETS_FROM', this.#urls.allowHttp);
    if (!place.ok) throw new DropletFetchError(uri, place.reason, true);
    const location = place.location;
    if (location.kind === 'http') {
      // Public addresses only, checked on every redirect (lib/net/public-http.ts).
      const res = await publicRequest(location.url, { policy: this.#urls, shown: (u) => redactUri(u.href) }).catch((err: Error) => {
        throw new DropletFetchError(uri, err.message, err instanceof UrlRefusedError);
      });
      if (res.status < 200 || res.status > 299) {
        res.body.destroy();
        throw new DropletFetchError(uri, `HTTP ${res.status}`, PERMANENT_HTTP.has(res.status));
      }
      return res.body;
    }
    try {
      const out = await this.#s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }));
      return out.Body as Readable;
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = e.$metadata?.httpStatusCode;
      const missing = e.name === 'NoSuchKey' || e.name === 'NoSuchBucket' || status === 404;
      const reason = missing ? 'no such object' : `${e.name ?? 'S3 error'}: ${e.message ?? 'no message'}`;
      throw new DropletFetchError(uri, reason, missing || (status !== undefined && PERMANENT_HTTP.has(status)));
    }
  }
}
