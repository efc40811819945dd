/** Phase 1: fetch the app archive (S3 object or HTTPS URL) into the workspace, streamed, readable as it arrives. */
import { writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parseObjectUri, redactUri } from '../../../lib/aws/uri.ts';
import { UrlRefusedError, type UrlPolicy, publicRequest } from '../../../lib/net/public-http.ts';
import { isRangeNotSatisfiable } from '../../../lib/aws/errors.ts';
import { HttpStatusError, PhaseError, RetryableError, classify } from '../errors.ts';
import { ArrivingArchive } from '../../../lib/archive/archive-file.ts';

type ObjectLocation = ReturnType<typeof parseObjectUri>;

export interface DownloadInput {
  uri: string;
  dest: string;
  s3: S3Client;
  /** What an https:// download_uri may reach (public addresses only, but in tests). */
  urls: UrlPolicy;
  /** Archives larger than this are refused before a byte is written. */
  maxBytes: number;
  signal: AbortSignal;
  onProgress?: (bytes: number, total?: number) => void;
}

/**
 * The zip's central directory sits at its end. Fetching the last MiB first (it holds the
 * directory of any app up to ~15 000 files) and the rest from the start lets unpack begin on
 * the first entries while later ones are still arriving.
 */
const TAIL_BYTES = 1024 * 1024;

interface Response {
  body: Readable;
  /** The object's size, when the server said. */
  total?: number;
  /** Where the body's bytes start in the object (a range response), else 0. */
  start: number;
  /** The server answered with a range (206), not the whole object. */
  ranged: boolean;
  etag?: string;
}

export interface ArchiveDownload {
  archive: ArrivingArchive;
  /** Resolves when every byte is on disk; the archive's waiters reject if it fails. */
  done: Promise<{ bytes: number }>;
  close(): Promise<void>;
}

async function get(location: ObjectLocation, input: DownloadInput, shown: string, range?: string, ifMatch?: string): Promise<Response> {
  if (location.kind === 's3') {
    const out = await input.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, Range: range, IfMatch: ifMatch }), {
      abortSignal: input.signal,
    });
    const parsed = parseContentRange(out.ContentRange);
    return { body: out.Body as Readable, total: parsed?.total ?? out.ContentLength, start: parsed?.start ?? 0, ranged: parsed !== undefined, etag: out.ETag };
  }
  const headers: Record<string, string> = {};
  if (range) headers.range = range;
  if (ifMatch) headers['if-match'] = ifMatch;
  // Public addresses only, checked on every redirect (lib/net/public-http.ts).
  const res = await publicRequest(location.url, { headers, signal: input.signal, policy: input.urls, shown: (u) => redactUri(u.href) });
  if (res.status === 416) {
    res.body.destroy();
    throw Object.assign(new Error('range not satisfiable'), { name: 'InvalidRange' });
  }
  if (res.status < 200 || res.status > 299) {
    res.body.destroy();
    throw new HttpStatusError('GET', shown, res.status); // judged by classify
  }
  const parsed = res.status === 206 ? parseContentRange(res.headers['content-range']) : undefined;
  const length = Number(res.headers['content-length']) || undefined;
  return {
    body: res.body,
    total: parsed?.total ?? (res.status === 200 ? length : undefined),
    start: parsed?.start ?? 0,
    ranged: parsed !== undefined,
    etag: res.headers.etag ?? undefined,
  };
}

function parseContentRange(header: string | undefined): { start: number; total: number } | undefined {
  const m = header ? /^bytes (\d+)-\d+\/(\d+)$/.exec(header) : null;
  return m ? { start: Number(m[1]), total: Number(m[2]) } : undefined;
}

/**
 * Starts fetching the archive into `dest`: returns once the tail is on disk (so the central
 * directory can be read) with the rest still arriving. A server that ignores ranges gets one
 * plain GET, and unpack waits for what it needs.
 */
export async function startDownload(input: DownloadInput): Promise<ArchiveDownload> {
  let location: ObjectLocation;
  try {
    location = parseObjectUri(input.uri);
  } catch (err) {
    throw new PhaseError('download', (err as Error).message);
  }
  const shown = redactUri(input.uri);
  let first: Response;
  try {
    first = await get(location, input, shown, `bytes=-${TAIL_BYTES}`).catch((err) => {
      if (isRangeNotSatisfiable(err)) return get(location, input, shown); // an empty object has no last MiB
      throw err;
    });
  } catch (err) {
    throw failed(err, shown, input.signal);
  }
  const total = first.total;
  if (total === undefined) {
    first.body.destroy();
    throw new PhaseError('download', `${shown} did not say how large it is (no Content-Length or Content-Range)`);
  }
  if (total > input.maxBytes) {
    first.body.destroy();
    throw new PhaseError('download', `the app archive is ${total} bytes, over the ${input.maxBytes}-byte limit`);
  }
  let handle: FileHandle | undefined;
  try {
    handle = await open(input.dest, 'wx+'); // read too: unpack reads what has arrived
    await handle.truncate(total);
  } catch (err) {
    first.body.destroy();
    await handle?.close().catch(() => {});
    throw err;
  }
  const archive = new ArrivingArchive(handle.fd, total);
  let bytes = 0;
  /** Writes a body at its place in the file; returns where it ended. */
  const write = async (body: Readable, at: number, arrived?: (front: number) => void): Promise<number> => {
    let pos = at;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (pos + chunk.length > total) throw new PhaseError('download', `${shown} sent more bytes than the ${total} it announced`);
        // Written synchronously (to the page cache: microseconds): unpack keeps the main thread
        // busy in bursts, and a thread-pool trip per chunk would let one chunk through per burst.
        for (let at = 0; at < chunk.length; ) at += writeSync(handle.fd, chunk, at, chunk.length - at, pos + at);
        pos += chunk.length;
        bytes += chunk.length;
        arrived?.(pos);
        input.onProgress?.(bytes, total);
      }
    } finally {
      body.destroy();
    }
    return pos;
  };
  const complete = (end: number, expected: number) => {
    if (end !== expected) throw new RetryableError(`downloading ${shown}: the connection ended after ${end} of ${expected} bytes`);
  };
  let rest: Promise<void>;
  if (first.start > 0) {
    try {
      complete(await write(first.body, first.start), total);
    } catch (err) {
      await handle.close();
      throw failed(err, shown, input.signal);
    }
    archive.tailArrived(first.start);
    const tailStart = first.start;
    rest = (async () => {
      // If-Match compares strongly: a weak ETag (W/"…") never matches, and would fail every try.
      const etag = first.etag?.startsWith('W/') ? undefined : first.etag;
      const front = await get(location, input, shown, `bytes=0-${tailStart - 1}`, etag);
      if (front.start !== 0) throw new RetryableError(`downloading ${shown}: the server answered another range than asked`);
      if (front.total !== total) throw new RetryableError(`${shown} changed while it was being downloaded: staging it again`);
      // A server that stopped honouring ranges sends the whole object: it covers the tail again.
      complete(await write(front.body, 0, (p) => archive.frontArrived(p)), front.ranged ? tailStart : total);
    })();
  } else {
    rest = write(first.body, 0, (p) => archive.frontArrived(p)).then((end) => complete(end, total));
  }
  const done = rest.then(
    () => {
      archive.frontArrived(total);
      return { bytes };
    },
    (err: unknown) => {
      const e = failed(err, shown, input.signal);
      archive.fail(e);
      throw e;
    },
  );
  done.catch(() => {}); // the task awaits it; unpack sees the failure through the archive
  return { archive, done, close: () => handle.close() };
}

const failed = (err: unknown, shown: string, signal: AbortSignal) => classify(err, { phase: 'download', object: shown, signal });
