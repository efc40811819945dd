/**
 * The stager's delivery promises, through the real handler, a real SQS event source (the
 * local worker) and the embedded S3+SQS: exactly one result per request, terminal failures
 * answered at once, transient ones retried and dead-lettered, one deadline for the task.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { createHandler, depsFromConfig } from '../../functions/stager/handler.ts';
import { StagerWorker } from '../../local/stager-worker.ts';
import { type TestStack, drain, putApp, sendRaw, startTestStack } from '../support/aws-stack.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let worker: StagerWorker;
let work: string;
let http: Server;
let httpBase: string;
let appZip: Buffer;
const hits = new Map<string, number>();
const puts = new Map<string, Buffer>();

beforeAll(async () => {
  stack = await startTestStack({ visibilitySeconds: 2, maxReceiveCount: 3 });
  work = mkdtempSync(join(tmpdir(), 'dw-work-'));
  appZip = await zipTree({ 'app.py': 'print("hi")\n', 'lib/util.py': 'X = 1\n' });
  const config = stagerConfigFromEnv({
    ...stackConfigToEnv(stack.config),
    DROPWARDEN_WORK_DIR: work,
    DROPWARDEN_STAGING_DEADLINE_SECONDS: '3',
    DROPWARDEN_CLAIM_LEASE_SECONDS: '2',
    // The archives and pre-signed PUTs here are served by http://127.0.0.1 (test-only setting).
    DROPWARDEN_TEST_ALLOW_PRIVATE_URLS: '1',
  });
  const handler = createHandler(() => ({ ...depsFromConfig(config), busyWaitMs: 10_000 }));
  worker = new StagerWorker({ sqs: sqsClient(stack.config), queueUrl: stack.config.queues.staging, region: 'us-east-1', handler, concurrency: 2, batchSize: 5 });
  http = createServer((req, res) => {
    const n = (hits.get(req.url!) ?? 0) + 1;
    hits.set(req.url!, n);
    if (req.url!.startsWith('/flaky') && n === 1) return void res.writeHead(503).end('busy');
    if (req.url!.startsWith('/down')) return void res.writeHead(503).end('down');
    if (req.url!.startsWith('/stall')) return; // never answers: the deadline must end it
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        puts.set(req.url!, Buffer.concat(chunks));
        res.writeHead(200).end();
      });
      return;
    }
    res.writeHead(200, { 'content-length': appZip.length }).end(appZip);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  http?.closeAllConnections();
  http?.close();
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

const request = (over: Record<string, unknown>) => JSON.stringify({ app_id: 'hello', properties: { meta: { command: 'python3 app.py' } }, ...over });

const resultsFor = (ids: string[], ms = 15_000) =>
  drain<StagingResult>(stack.config, stack.config.queues.results, ms, (got) => ids.every((id) => got.some((r) => r.request_id === id)));

describe('stager delivery', () => {
  it('stages a valid request into a droplet and sends one result', async () => {
    const uri = await putApp(stack.config, appZip);
    await sendRaw(stack.config, request({ request_id: 'ok-1', download_uri: uri }));
    const [result] = await resultsFor(['ok-1']);
    expect(result.error).toBeUndefined();
    expect(result.droplet!.uri).toBe(`s3://${stack.config.buckets.droplets}/hello/${result.droplet!.sha256}.tgz`);
    expect(result.staging_info).toMatchObject({ framework: 'standalone', start_command: 'python3 app.py', detected: true });
    expect(Object.keys(result.timings_ms).sort()).toEqual(['download', 'pack', 'stage', 'unpack', 'upload']);
    expect(result.task_log).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Downloading application$/m);
    const obj = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: `hello/${result.droplet!.sha256}.tgz` }));
    expect(obj.ContentLength).toBe(result.droplet!.size);
  });

  it('uploads to an https-style (pre-signed) upload_uri and downloads from one', async () => {
    await sendRaw(
      stack.config,
      request({ request_id: 'http-io', download_uri: `${httpBase}/zip/app.zip`, upload_uri: `${httpBase}/put/droplet.tgz?X-Amz-Signature=abc` }),
    );
    const [r] = (await resultsFor(['http-io'])).filter((x) => x.request_id === 'http-io');
    expect(r.error).toBeUndefined();
    const body = puts.get('/put/droplet.tgz?X-Amz-Signature=abc')!;
    expect(body.length).toBe(r.droplet!.size);
    expect(createHash('sha256').update(body).digest('hex')).toBe(r.droplet!.sha256);
    expect(r.task_log).not.toContain('X-Amz-Signature');
  });

  it('answers a non-JSON message with an error result keyed by the SQS message id', async () => {
    const messageId = await sendRaw(stack.config, 'this is { not json');
    const got = await resultsFor([messageId]);
    const mine = got.filter((r) => r.request_id === messageId);
    expect(mine).toHaveLength(1);
    expect(mine[0].error).toMatch(/^Staging task failed:\n Invalid staging request: the message body is not JSON/);
    expect(mine[0].droplet).toBeUndefined();
  });

  it('answers a request missing download_uri on its reply_to queue, naming the field', async () => {
    const { QueueUrl } = await sqsClient(stack.config).send(new CreateQueueCommand({ QueueName: 'private-replies' }));
    await sendRaw(stack.config, JSON.stringify({ request_id: 'no-uri', app_id: 'x', reply_to: QueueUrl }));
    const got = await drain<StagingResult>(stack.config, QueueUrl!, 10_000, (g) => g.length > 0);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ request_id: 'no-uri', app_id: 'x' });
    expect(got[0].error).toMatch(/Invalid staging request: .*download_uri/);
  });

  it("drops the result, and does not retry, when the request's reply_to queue was deleted", async () => {
    const sqs = sqsClient(stack.config);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'gone-replies' }));
    await sqs.send(new DeleteQueueCommand({ QueueUrl }));
    const uri = await putApp(stack.config, appZip);
    await sendRaw(stack.config, request({ request_id: 'gone-reply', download_uri: uri, reply_to: QueueUrl }));
    // Marked sent: a redelivery would find the request done instead of sending again.
    const s3 = s3Client(stack.config);
    const claimState = async () => {
      try {
        const key = `.requests/${createHash('sha256').update('gone-reply').digest('hex')}.json`;
        const out = await s3.send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: key }));
        return (JSON.parse(await out.Body!.transformToString()) as { state: string }).state;
      } catch {
        return undefined;
      }
    };
    const deadline = Date.now() + 15_000;
    while ((await claimState()) !== 'sent' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await claimState()).toBe('sent');
    // Nothing was left to walk to the DLQ (maxReceiveCount 3, visibility 2 s here).
    await new Promise((r) => setTimeout(r, 2500));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: stack.config.queues.staging, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    expect(Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible)).toBe(0);
  });

  it('fails terminally when the app archive does not exist', async () => {
    await sendRaw(stack.config, request({ request_id: 'missing', download_uri: `s3://${stack.config.buckets.apps}/nope.zip` }));
    const [r] = (await resultsFor(['missing'])).filter((x) => x.request_id === 'missing');
    expect(r.error).toBe(`Staging task failed:\n Failed downloading app: s3://${stack.config.buckets.apps}/nope.zip does not exist: upload the app archive there first`);
  });

  it('fails terminally for an unknown framework, listing the known ones', async () => {
    const uri = await putApp(stack.config, appZip);
    await sendRaw(stack.config, request({ request_id: 'unknown-fw', download_uri: uri, properties: { framework: 'cobol' } }));
    const [r] = (await resultsFor(['unknown-fw'])).filter((x) => x.request_id === 'unknown-fw');
    expect(r.error).toMatch(/^Staging task failed:\n Staging plugin failed: unknown framework "cobol": this stager supports .*standalone/);
  });

  it('refuses a zip-slip archive and writes nothing outside the workspace', async () => {
    // yazl refuses to write such a name, so rename an entry in place (same length).
    const evil = Buffer.from(
      (await zipTree({ 'zz/zz/escaped.txt': 'x', 'app.py': 'y' })).toString('latin1').replaceAll('zz/zz/escaped.txt', '../../escaped.txt'),
      'latin1',
    );
    const uri = await putApp(stack.config, evil);
    await sendRaw(stack.config, request({ request_id: 'slip', download_uri: uri }));
    const [r] = (await resultsFor(['slip'])).filter((x) => x.request_id === 'slip');
    expect(r.error).toBe('Staging task failed:\n Failed unpacking app: entry escapes the app root: ../../escaped.txt');
  });

  it('stages once, with one droplet and one result, for the same request_id sent twice at once', async () => {
    // Served by the test's own server, so each staging's download is counted: droplet keys are
    // content-addressed, and two stagings of the same app would still leave one key.
    const body = request({ request_id: 'twice', download_uri: `${httpBase}/twice/app.zip`, app_id: 'twice' });
    await Promise.all([sendRaw(stack.config, body), sendRaw(stack.config, body)]);
    // Long enough for the duplicate to come back after the visibility timeout and be dropped.
    const got = await drain<StagingResult>(stack.config, stack.config.queues.results, 9_000);
    expect(got.filter((r) => r.request_id === 'twice')).toHaveLength(1);
    expect(hits.get('/twice/app.zip'), 'downloads of the app, one per staging').toBe(1);
    const list = await s3Client(stack.config).send(new ListObjectsV2Command({ Bucket: stack.config.buckets.droplets, Prefix: 'twice/' }));
    expect(list.KeyCount).toBe(1);
  });

  it('retries a transient download failure and then stages once', async () => {
    await sendRaw(stack.config, request({ request_id: 'flaky', download_uri: `${httpBase}/flaky/app.zip` }));
    const got = (await resultsFor(['flaky'], 20_000)).filter((r) => r.request_id === 'flaky');
    expect(hits.get('/flaky/app.zip')).toBe(2);
    expect(got).toHaveLength(1);
    expect(got[0].error).toBeUndefined();
  });

  it('dead-letters a request that keeps failing transiently, without a result', async () => {
    await sendRaw(stack.config, request({ request_id: 'down', download_uri: `${httpBase}/down/app.zip` }));
    const dead = await drain<Record<string, unknown>>(stack.config, stack.config.queues.staging_dlq, 25_000, (g) => g.length > 0);
    expect(dead.map((d) => d.request_id)).toEqual(['down']);
    expect(hits.get('/down/app.zip')).toBe(3);
    const results = await drain<StagingResult>(stack.config, stack.config.queues.results, 1_500);
    expect(results.filter((r) => r.request_id === 'down')).toHaveLength(0);
  });

  it('leaves no task workspace behind, whatever the outcome', async () => {
    // Every request above has been answered; cleanup runs right after each answer.
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(work) ? readdirSync(work) : []).toEqual([]);
  });

  it('ends a task that runs past the deadline with the v1 timeout message', async () => {
    await sendRaw(stack.config, request({ request_id: 'slow', download_uri: `${httpBase}/stall/app.zip` }));
    const [r] = (await resultsFor(['slow'])).filter((x) => x.request_id === 'slow');
    expect(r.error).toBe('Staging task failed:\n Staging timed out after 3 seconds.');
  });
});
