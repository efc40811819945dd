/**
 * A droplet upload that fails half-way is aborted (DESIGN §9, *upload*): the droplets bucket
 * gets no object, and the multipart upload is gone (S3 answers NoSuchUpload for its id), both
 * when the failure is terminal and when it is retried through the queue. A droplet over one
 * part (5 MiB of random bytes: gzip cannot shrink it) takes the multipart path, as on AWS.
 */
import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, ListObjectsV2Command, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { type TestStack, drain, putApp, sendRaw, startTestStack } from '../support/aws-stack.ts';
import { type FaultyClients, faultyClients } from '../support/sdk-faults.ts';
import { type RunningStager, startStager } from '../support/stager.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let faults: FaultyClients;
let stager: RunningStager;
let bigApp: Buffer;

beforeAll(async () => {
  stack = await startTestStack({ visibilitySeconds: 1 });
  faults = faultyClients(stack.config);
  stager = await startStager(stack, { s3: faults.s3, sqs: faults.sqs });
  bigApp = await zipTree({ 'app.py': 'print("hi")\n', 'blob.bin': randomBytes(7 * 1024 * 1024) });
});

afterAll(async () => {
  await stager?.stop();
  faults?.destroy();
  await stack?.stop();
});

async function stage(id: string, appId: string): Promise<StagingResult> {
  const uri = await putApp(stack.config, bigApp);
  await sendRaw(stack.config, JSON.stringify({ request_id: id, app_id: appId, download_uri: uri, properties: { meta: { command: 'python3 app.py' } } }));
  const got = await drain<StagingResult>(stack.config, stack.config.queues.results, 45_000, (g) => g.some((r) => r.request_id === id));
  await stager.finished(id);
  return got.find((r) => r.request_id === id)!;
}

const dropletOf = (appId: string) => (input: Record<string, any>) => input.Bucket === stack.config.buckets.droplets && String(input.Key).startsWith(`${appId}/`);
const secondPart = (appId: string) => (input: Record<string, any>) => dropletOf(appId)(input) && input.PartNumber === 2;

/** The app's keys in the droplets bucket. */
async function keysOf(appId: string): Promise<string[]> {
  const out = await s3Client(stack.config).send(new ListObjectsV2Command({ Bucket: stack.config.buckets.droplets, Prefix: `${appId}/` }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

/** What S3 says to a part for an upload id: NoSuchUpload once it was aborted. */
async function partAnswer(bucket: string, key: string, uploadId: string): Promise<string> {
  try {
    await s3Client(stack.config).send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 9, Body: Buffer.from('late') }));
    return 'accepted';
  } catch (err) {
    return (err as Error).name;
  }
}

describe('an aborted droplet upload', () => {
  it('a part refused for good: a terminal result, no object, no upload left pending', async () => {
    faults.fail({ command: 'UploadPart', when: secondPart('denied'), times: Infinity, name: 'AccessDenied', status: 403 });
    const r = await stage('abort-denied', 'denied');
    expect(r.error).toMatch(/^Staging task failed:\n Failed uploading droplet: access to s3:\/\/.* was denied/);
    expect(r.droplet).toBeUndefined();
    const [created] = faults.callsOf('CreateMultipartUpload', dropletOf('denied'));
    expect(created, 'the droplet went the multipart way').toBeDefined();
    const aborted = faults.callsOf('AbortMultipartUpload', dropletOf('denied'));
    expect(aborted).toHaveLength(1);
    const { Bucket, Key, UploadId } = aborted[0].input;
    expect(Key).toBe(created.input.Key);
    expect(faults.callsOf('CompleteMultipartUpload', dropletOf('denied'))).toEqual([]);
    expect(await partAnswer(Bucket, Key, UploadId)).toBe('NoSuchUpload');
    expect(await keysOf('denied')).toEqual([]);
    await expect(s3Client(stack.config).send(new HeadObjectCommand({ Bucket, Key }))).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('a part failing transiently: the first upload is aborted, the retry leaves exactly the one droplet', async () => {
    faults.fail({ command: 'UploadPart', when: secondPart('flaky'), times: 3, name: 'InternalError', status: 500 });
    const r = await stage('abort-flaky', 'flaky');
    expect(r.error).toBeUndefined();
    expect(stager.deliveriesOf('abort-flaky').map((d) => d.retried)).toEqual([['abort-flaky'], []]);
    const aborted = faults.callsOf('AbortMultipartUpload', dropletOf('flaky'));
    expect(aborted).toHaveLength(1);
    const { Bucket, Key, UploadId } = aborted[0].input;
    expect(await partAnswer(Bucket, Key, UploadId)).toBe('NoSuchUpload');
    expect(faults.callsOf('CompleteMultipartUpload', dropletOf('flaky'))).toHaveLength(1);
    expect(await keysOf('flaky')).toEqual([`flaky/${r.droplet!.sha256}.tgz`]);
  });
});
