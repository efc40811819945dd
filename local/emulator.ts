/**
 * The embedded AWS: fauxqs (an S3+SQS emulator speaking the real wire APIs) with S3 objects
 * on disk, plus the S3 features dropwarden relies on that fauxqs lacks: conditional writes
 * (`If-None-Match: *` / `If-Match: <etag>` on PutObject, 412 PreconditionFailed otherwise),
 * which real S3 has supported since 2024, and CopyObject's `x-amz-copy-source-if-match`.
 *
 * fauxqs's `startFauxqs` hides its Fastify app, so this assembles the same parts from the
 * package's own modules (pinned to an exact fauxqs version in package.json) and adds a hook.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface EmulatorOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  region: string;
  /** Where S3 objects are kept as files (droplets land on disk, not in memory). */
  s3StorageDir: string;
  /**
   * Seen by every request before the emulator handles it, for tests that inject a fault: it
   * may hold the request (a pending promise) or answer it instead (an error status). Absent
   * outside tests.
   */
  intercept?: EmulatorIntercept;
}

/** What an intercept sees: for SQS the parsed body names the action's queue (`QueueUrl`). */
export interface EmulatorRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** S3: the bucket and key of the path; absent for SQS. */
  bucket?: string;
  key?: string;
  query: Record<string, string | undefined>;
  body: unknown;
}

/** An answer given instead of the emulator's own. */
export interface EmulatorFault {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

export type EmulatorIntercept = (request: EmulatorRequest) => void | EmulatorFault | Promise<void | EmulatorFault>;

export interface RunningEmulator {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

const fauxqsDist = dirname(fileURLToPath(import.meta.resolve('fauxqs')));
const internal = (path: string) => import(pathToFileURL(join(fauxqsDist, path)).href);

const PRECONDITION_FAILED =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
  '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
  '<Condition>%s</Condition></Error>';

/** fauxqs's escaping of characters file systems refuse: kept, so a data dir written before reads back the same. */
const UNSAFE_CHARS = /[<>:"|?*\\%\x00-\x1f]/g;
const OBJECT_FILE = /\.(data|meta\.json)$/;
/** Leaves room for ".meta.json" under the usual 255-byte name limit. */
const MAX_SEGMENT_BYTES = 200;

/**
 * An S3 key as a path under a bucket's objects dir. fauxqs maps "/" to directories and
 * escapes a few characters, but a key is any string: its "..", "." and empty segments were
 * resolved by the file system (writing outside the data dir, or two keys into one file) and a
 * long segment failed the PUT. Each such segment gets a form that fauxqs's own escaping never
 * produces (it writes "%" only as "%25"), so every key has its own path, inside the dir:
 * "" → "%", "." → "%2e", ".." → "%2e%2e", a directory named like an object file gets a
 * trailing "%", a segment over 200 bytes becomes "%h<sha256>".
 */
export function keyToRelativePath(key: string): string {
  const segments = key.split('/');
  return segments
    .map((segment, i) => {
      if (segment === '') return '%';
      if (segment === '.' || segment === '..') return segment.replaceAll('.', '%2e');
      let encoded = segment.replace(UNSAFE_CHARS, (ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
      if (i < segments.length - 1 && OBJECT_FILE.test(encoded)) encoded += '%';
      if (Buffer.byteLength(encoded) > MAX_SEGMENT_BYTES) encoded = `%h${createHash('sha256').update(segment).digest('hex')}`;
      return encoded;
    })
    .join(sep);
}

/** A path under `dir`, or an error: the last guard, whatever produced the name. */
function inside(dir: string, ...names: string[]): string {
  const base = resolve(dir);
  const path = resolve(base, ...names);
  if (!path.startsWith(base + sep)) throw Object.assign(new Error(`refusing a path outside ${base}: ${path}`), { code: 'EDWESCAPE' });
  return path;
}

/**
 * fauxqs's FileS3Persistence with the object operations (the only ones that take a client's
 * key as a path) re-done on keyToRelativePath. Bucket names are validated by fauxqs's store
 * (S3's rules: no "/", no ".."), upload ids are its own UUIDs.
 */
function confine<P extends { bucketsDir: string; cleanEmptyParents(dir: string, stopAt: string): void }>(persistence: P): P {
  const objectFiles = (bucket: string, key: string) => {
    const objectsDir = inside(persistence.bucketsDir, bucket, 'objects');
    const rel = keyToRelativePath(key);
    return { objectsDir, data: inside(objectsDir, `${rel}.data`), meta: inside(objectsDir, `${rel}.meta.json`) };
  };
  const metaOf = (obj: { body?: unknown; lastModified: Date; [k: string]: unknown }) => {
    const { body: _body, lastModified, ...rest } = obj;
    return JSON.stringify({ ...rest, lastModified: lastModified.toISOString() });
  };
  const unlinkQuietly = (path: string) => {
    try {
      unlinkSync(path);
    } catch {
      /* not there */
    }
  };
  return Object.assign(persistence, {
    upsertObject(bucket: string, obj: { key: string; body: Buffer; lastModified: Date }) {
      const at = objectFiles(bucket, obj.key);
      mkdirSync(dirname(at.data), { recursive: true });
      writeFileSync(at.data, obj.body);
      writeFileSync(at.meta, metaOf(obj));
    },
    deleteObject(bucket: string, key: string) {
      const at = objectFiles(bucket, key);
      unlinkQuietly(at.data);
      unlinkQuietly(at.meta);
      persistence.cleanEmptyParents(dirname(at.data), at.objectsDir);
    },
    renameObject(bucket: string, sourceKey: string, destKey: string) {
      const from = objectFiles(bucket, sourceKey);
      const to = objectFiles(bucket, destKey);
      mkdirSync(dirname(to.data), { recursive: true });
      const meta = JSON.parse(readFileSync(from.meta, 'utf8'));
      meta.key = destKey;
      renameSync(from.data, to.data);
      writeFileSync(to.meta, JSON.stringify(meta));
      if (from.meta !== to.meta) unlinkQuietly(from.meta);
      persistence.cleanEmptyParents(dirname(from.data), from.objectsDir);
    },
    readBody(bucket: string, key: string): Buffer {
      return readFileSync(objectFiles(bucket, key).data);
    },
  });
}

export async function startEmulator(opts: EmulatorOptions): Promise<RunningEmulator> {
  const [{ buildApp }, { SqsStore }, { SnsStore }, { S3Store }, { FileS3Persistence }] = await Promise.all([
    import('fauxqs'),
    internal('sqs/sqsStore.js'),
    internal('sns/snsStore.js'),
    internal('s3/s3Store.js'),
    internal('s3/fileS3Persistence.js'),
  ]);
  mkdirSync(opts.s3StorageDir, { recursive: true });
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  const s3Store = new S3Store();
  const persistence = confine(new FileS3Persistence(opts.s3StorageDir));
  persistence.loadS3(s3Store);
  s3Store.persistence = persistence;

  const app = buildApp({ logger: false, defaultRegion: opts.region, stores: { sqsStore, snsStore, s3Store } });
  app.addHook('preClose', () => persistence.close());

  const intercept = opts.intercept;
  if (intercept) {
    app.addHook('preHandler', async (request: any, reply: any) => {
      const fault = await intercept({
        method: request.method,
        url: request.url,
        headers: request.headers,
        bucket: request.params?.bucket,
        key: request.params?.['*'],
        query: request.query ?? {},
        body: request.body,
      });
      if (!fault) return;
      reply
        .code(fault.status)
        .headers(fault.headers ?? {})
        .send(fault.body);
      return reply;
    });
  }

  // CopyObject's `x-amz-copy-source-if-match` (fauxqs copies unconditionally): 412 when the
  // source's ETag is another, as on S3.
  app.addHook('preHandler', (request: any, reply: any, done: () => void) => {
    const source = request.headers['x-amz-copy-source'];
    const ifMatch = request.headers['x-amz-copy-source-if-match'];
    if (request.method !== 'PUT' || typeof source !== 'string' || typeof ifMatch !== 'string') return done();
    const path = decodeURIComponent(source.replace(/^\//, '').split('?')[0]);
    const slash = path.indexOf('/');
    let current: { etag: string } | undefined;
    try {
      current = s3Store.headObject(path.slice(0, slash), path.slice(slash + 1));
    } catch {
      current = undefined;
    }
    if (current && current.etag === ifMatch) return done();
    reply.code(412).header('content-type', 'application/xml').send(PRECONDITION_FAILED.replace('%s', 'x-amz-copy-source-If-Match'));
  });

  // Keys with a conditional PutObject in flight: a second one racing it loses, as on S3.
  const inFlight = new Set<string>();
  app.addHook('preHandler', (request: any, reply: any, done: () => void) => {
    const ifNoneMatch = request.headers['if-none-match'];
    const ifMatch = request.headers['if-match'];
    if (request.method !== 'PUT' || (!ifNoneMatch && !ifMatch) || request.query?.uploadId !== undefined) {
      return done();
    }
    const bucket = request.params?.bucket;
    const key = request.params?.['*'];
    if (!bucket || !key) return done();
    const id = `${bucket}/${key}`;
    let current: { etag: string } | undefined;
    try {
      current = s3Store.headObject(bucket, key);
    } catch {
      current = undefined;
    }
    const fails = inFlight.has(id)
      ? true
      : ifNoneMatch
        ? ifNoneMatch === '*'
          ? current !== undefined
          : current?.etag === ifNoneMatch
        : current === undefined || (ifMatch !== '*' && current.etag !== ifMatch);
    if (fails) {
      reply
        .code(412)
        .header('content-type', 'application/xml')
        .send(PRECONDITION_FAILED.replace('%s', ifNoneMatch ? 'If-None-Match' : 'If-Match'));
      return;
    }
    inFlight.add(id);
    reply.raw.once('close', () => inFlight.delete(id));
    done();
  });

  const address: string = await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () => app.close(),
  };
}
