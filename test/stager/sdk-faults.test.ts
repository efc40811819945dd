/**
 * Transient and permanent errors of the AWS services themselves, as the real @aws-sdk clients
 * raise them (throttling, 5xx, access denied, a missing bucket), injected into the stager's S3
 * and SQS clients on the embedded emulator (DESIGN §9, "Retries and the DLQ"): a transient one,
 * once the SDK's own attempts are spent, hands the message back to the queue and the next
 * delivery stages it, once; a permanent one is answered with a result at once, never retried.
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { type TestStack, drain, putApp, sendRaw, startTestStack } from '../support/aws-stack.ts';
import { type FaultyClients, faultyClients } from '../support/sdk-faults.ts';
import { type RunningStager, startStager } from '../support/stager.ts';
import { zipTree } from '../support/zip.ts';

/** The SDK's default attempts per call (its standard retry strategy): all of them fail. */
const SDK_ATTEMPTS = 3;

let stack: TestStack;
let faults: FaultyClients;
let stager: RunningStager;
let appZip: Buffer;
const results: StagingResult[] = [];

beforeAll(async () => {
  stack = await startTestStack({ visibilitySeconds: 1 });
  faults = faultyClients(stack.config);
  stager = await startStager(stack, { s3: faults.s3, sqs: faults.sqs });
  appZip = await zipTree({ 'app.py': 'print("hi")\n' });
});

afterAll(async () => {
  await stager?.stop();
  faults?.destroy();
  await stack?.stop();
});

/** Sends a request for `appId` (a fresh archive key each) and resolves with its one result. */
async function stage(id: string, appId: string, archiveKey = `test/${id}.zip`): Promise<StagingResult> {
  const uri = await putApp(stack.config, appZip, archiveKey);
  await sendRaw(stack.config, JSON.stringify({ request_id: id, app_id: appId, download_uri: uri, properties: { meta: { command: 'python3 app.py' } } }));
  await drain<StagingResult>(stack.config, stack.config.queues.results, 45_000, (got) => {
    results.push(...got.splice(0));
    return results.some((r) => r.request_id === id);
  });
  await stager.finished(id);
  const mine = results.filter((r) => r.request_id === id);
  expect(mine, `one result for ${id}`).toHaveLength(1);
  return mine[0];
}

/**
 * The first delivery was handed back, and a later one staged it. With a 1 s visibility timeout a
 * slow second delivery can be delivered a third time before its delete lands; that one finds the
 * result already sent and hands nothing back, so "later deliveries hand nothing back" is the
 * contract, not "exactly two deliveries".
 */
function expectHandedBackOnce(id: string): void {
  const retried = stager.deliveriesOf(id).map((d) => d.retried);
  expect(retried[0], `the first delivery of ${id} handed back`).toEqual([id]);
  expect(retried.length, `${id} delivered again after it was handed back`).toBeGreaterThanOrEqual(2);
  expect(retried.slice(1), `no later delivery of ${id} handed it back`).toEqual(retried.slice(1).map(() => []));
}

const appKey = (id: string) => (input: Record<string, any>) => input.Bucket === stack.config.buckets.apps && input.Key === `test/${id}.zip`;
const dropletOf = (appId: string) => (input: Record<string, any>) => input.Bucket === stack.config.buckets.droplets && String(input.Key).startsWith(`${appId}/`);

describe('transient service errors are retried through the queue', () => {
  it('S3 SlowDown (503) on the archive GET: handed back, then staged on the next delivery', async () => {
    faults.fail({ command: 'GetObject', when: appKey('get-slowdown'), times: SDK_ATTEMPTS, name: 'SlowDown', status: 503 });
    const r = await stage('get-slowdown', 'slowdown');
    expect(r.error).toBeUndefined();
    expectHandedBackOnce('get-slowdown');
    const gets = faults.callsOf('GetObject', appKey('get-slowdown'));
    expect(gets.slice(0, SDK_ATTEMPTS).map((c) => c.faulted)).toEqual(['SlowDown', 'SlowDown', 'SlowDown']);
    expect(gets.slice(SDK_ATTEMPTS).length).toBeGreaterThan(0);
    expect(gets.slice(SDK_ATTEMPTS).every((c) => !c.faulted)).toBe(true);
  });

  it('S3 InternalError (500) on the droplet PUT: handed back, then the droplet is there', async () => {
    faults.fail({ command: 'PutObject', when: dropletOf('internal'), times: SDK_ATTEMPTS, name: 'InternalError', status: 500 });
    const r = await stage('put-internal', 'internal');
    expect(r.error).toBeUndefined();
    expectHandedBackOnce('put-internal');
    expect(faults.callsOf('PutObject', dropletOf('internal')).map((c) => c.faulted ?? 'ok')).toEqual(['InternalError', 'InternalError', 'InternalError', 'ok']);
    const head = await s3Client(stack.config).send(new HeadObjectCommand({ Bucket: stack.config.buckets.droplets, Key: `internal/${r.droplet!.sha256}.tgz` }));
    expect(head.ContentLength).toBe(r.droplet!.size);
  });

  it('SQS ThrottlingException on sending the result: handed back, and the recorded result is sent once', async () => {
    const ours = (input: Record<string, any>) => input.QueueUrl === stack.config.queues.results && String(input.MessageBody).includes('"send-throttled"');
    faults.fail({ command: 'SendMessage', when: ours, times: SDK_ATTEMPTS, name: 'ThrottlingException', status: 400 });
    const r = await stage('send-throttled', 'throttled');
    expect(r.error).toBeUndefined();
    expectHandedBackOnce('send-throttled');
    expect(faults.callsOf('SendMessage', ours).map((c) => c.faulted ?? 'ok')).toEqual(['ThrottlingException', 'ThrottlingException', 'ThrottlingException', 'ok']);
    // Staged once: the second delivery sent the result the first had recorded.
    expect(faults.callsOf('GetObject', appKey('send-throttled')).length).toBeGreaterThan(0);
    expect(new Set(faults.callsOf('PutObject', dropletOf('throttled')).map((c) => c.input.Key)).size).toBe(1);
    expect(faults.callsOf('PutObject', dropletOf('throttled'))).toHaveLength(1);
  });
});

describe('permanent service errors are terminal', () => {
  it('S3 AccessDenied (403) on the archive GET: one try, a result naming the permission', async () => {
    faults.fail({ command: 'GetObject', when: appKey('get-denied'), times: Infinity, name: 'AccessDenied', status: 403 });
    const r = await stage('get-denied', 'denied');
    expect(r.error).toBe(
      `Staging task failed:\n Failed downloading app: access to s3://${stack.config.buckets.apps}/test/get-denied.zip was denied: grant the stager s3:GetObject on it`,
    );
    expect(r.droplet).toBeUndefined();
    expect(stager.deliveriesOf('get-denied').map((d) => d.retried)).toEqual([[]]);
    // Not retried by the SDK either.
    expect(faults.callsOf('GetObject', appKey('get-denied')).map((c) => c.faulted)).toEqual(['AccessDenied']);
  });

  it('S3 NoSuchBucket (404) on the droplet PUT: one try, a result naming the bucket', async () => {
    faults.fail({ command: 'PutObject', when: dropletOf('nobucket'), times: Infinity, name: 'NoSuchBucket', status: 404 });
    const r = await stage('put-nobucket', 'nobucket');
    expect(r.error).toMatch(
      new RegExp(`^Staging task failed:\\n Failed uploading droplet: the bucket of s3://${stack.config.buckets.droplets}/nobucket/[0-9a-f]{64}\\.tgz does not exist$`),
    );
    expect(stager.deliveriesOf('put-nobucket').map((d) => d.retried)).toEqual([[]]);
    expect(faults.callsOf('PutObject', dropletOf('nobucket')).map((c) => c.faulted)).toEqual(['NoSuchBucket']);
  });

  it('S3 NoSuchBucket (404) on the archive GET: the missing bucket is said, not a missing archive', async () => {
    // A missing bucket answers 404 too; classify says it before "does not exist: upload … first".
    faults.fail({ command: 'GetObject', when: appKey('get-nobucket'), times: Infinity, name: 'NoSuchBucket', status: 404 });
    const r = await stage('get-nobucket', 'getnobucket');
    expect(r.error).toBe(`Staging task failed:\n Failed downloading app: the bucket of s3://${stack.config.buckets.apps}/test/get-nobucket.zip does not exist`);
    expect(stager.deliveriesOf('get-nobucket').map((d) => d.retried)).toEqual([[]]);
    expect(faults.callsOf('GetObject', appKey('get-nobucket')).map((c) => c.faulted)).toEqual(['NoSuchBucket']);
  });
});
