/**
 * The embedded AWS: fauxqs (an S3+SQS emulator speaking the real wire APIs) with S3 objects
 * on disk, plus the one S3 feature dropwarden relies on that fauxqs lacks: conditional writes
 * (`If-None-Match: *` / `If-Match: <etag>` on PutObject, 412 PreconditionFailed otherwise),
 * which real S3 has supported since 2024.
 *
 * fauxqs's `startFauxqs` hides its Fastify app, so this assembles the same parts from the
 * package's own modules (pinned to an exact fauxqs version in package.json) and adds a hook.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface EmulatorOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  region: string;
  /** Where S3 objects are kept as files (droplets land on disk, not in memory). */
  s3StorageDir: string;
}

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
  const persistence = new FileS3Persistence(opts.s3StorageDir);
  persistence.loadS3(s3Store);
  s3Store.persistence = persistence;

  const app = buildApp({ logger: false, defaultRegion: opts.region, stores: { sqsStore, snsStore, s3Store } });
  app.addHook('preClose', () => persistence.close());

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
        ? ifNoneMatch === '*' ? current !== undefined : current?.etag === ifNoneMatch
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
