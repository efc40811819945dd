/**
 * The bundle that would deploy is the code that is tested: the stager function's esbuild
 * output, copied away from the repository (so nothing resolves from node_modules), runs in its
 * own Node process with only the environment the stack gives it, against the embedded S3+SQS,
 * fed real SQS events by the local worker, and stages an app.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTING } from '../../contracts/settings.ts';
import type { StagingResult } from '../../contracts/staging.ts';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import { StagerWorker } from '../../local/stager-worker.ts';
import { type TestStack, drain, putApp, sendRaw, startTestStack } from '../../test/support/aws-stack.ts';
import { zipTree } from '../../test/support/zip.ts';
import { logicalId, stagerBundleDir, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

const run = promisify(execFile);

/** Loads the bundle cold, calls `handler(event, context)`, writes the answer. */
const INVOKE = `
import { readFileSync, writeFileSync } from 'node:fs';
const [eventFile, answerFile] = process.argv.slice(2);
const { handler } = await import('./index.mjs');
const context = {
  awsRequestId: 'bundle-test', functionName: 'stager', functionVersion: '$LATEST', memoryLimitInMB: '3584',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:stager', logGroupName: 'stager', logStreamName: 'test',
  callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 900_000,
};
const response = await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context);
writeFileSync(answerFile, JSON.stringify({ response }));
`;

let s: Synthesized;
let stack: TestStack;
let worker: StagerWorker;
let dir: string;
const invocations: Array<{ response: SQSBatchResponse }> = [];

/** The function's environment as the template declares it, its references pointed at the emulator. */
function functionEnvironment(): Record<string, string> {
  const declared = s.json.Resources[logicalId(s.stack.stager.function)].Properties.Environment.Variables as Record<string, unknown>;
  const { storage, queues } = s.stack;
  const emulated = new Map<string, string>([
    [logicalId(storage.apps), stack.config.buckets.apps],
    [logicalId(storage.droplets), stack.config.buckets.droplets],
    [logicalId(storage.cache), stack.config.buckets.cache],
    [logicalId(queues.results.queue), stack.config.queues.results],
  ]);
  // The emulator has no Lambda or STS: without the builder's names the bundle builds in its own process.
  const inProcess = new Set<string>([SETTING.builderFunction, SETTING.builderDataRoleArn]);
  return Object.fromEntries(
    Object.entries(declared)
      .filter(([name]) => !inProcess.has(name))
      .map(([name, value]) => {
        if (typeof value === 'string') return [name, value];
        const ref = (value as { Ref?: string }).Ref;
        if (!ref || !emulated.has(ref)) throw new Error(`${name}: no emulated value for ${JSON.stringify(value)}`);
        return [name, emulated.get(ref)!];
      }),
  );
}

beforeAll(async () => {
  s = synthesize({ bundle: true });
  dir = mkdtempSync(join(tmpdir(), 'dw-bundle-'));
  cpSync(stagerBundleDir(s), join(dir, 'fn'), { recursive: true });
  writeFileSync(join(dir, 'fn', 'invoke.mjs'), INVOKE);

  stack = await startTestStack({ visibilitySeconds: 60 });
  const env = {
    PATH: process.env.PATH!,
    // What Lambda provides; the emulator takes any credentials.
    AWS_REGION: stack.config.region,
    AWS_ACCESS_KEY_ID: 'dropwarden',
    AWS_SECRET_ACCESS_KEY: 'dropwarden',
    AWS_ENDPOINT_URL: stack.config.endpoint!,
    DROPWARDEN_WORK_DIR: join(dir, 'tmp'),
    ...functionEnvironment(),
  };
  let n = 0;
  worker = new StagerWorker({
    sqs: sqsClient(stack.config),
    queueUrl: stack.config.queues.staging,
    region: stack.config.region,
    batchSize: 1,
    concurrency: 1,
    handler: async (event: SQSEvent) => {
      const eventFile = join(dir, `event-${++n}.json`);
      const answerFile = join(dir, `answer-${n}.json`);
      writeFileSync(eventFile, JSON.stringify(event));
      await run(process.execPath, ['invoke.mjs', eventFile, answerFile], { cwd: join(dir, 'fn'), env, maxBuffer: 64 << 20 });
      const answer = JSON.parse(readFileSync(answerFile, 'utf8'));
      invocations.push(answer);
      return answer.response;
    },
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the synthesized stager bundle', () => {
  it('stages an app from the embedded S3 and answers on the result queue', async () => {
    const uri = await putApp(stack.config, await zipTree({ 'app.py': 'print("hi")\n' }));
    await sendRaw(
      stack.config,
      JSON.stringify({
        request_id: 'bundle-1',
        app_id: 'bundled',
        download_uri: uri,
        properties: { meta: { command: 'python3 app.py' } },
      }),
    );
    const results = await drain<StagingResult>(stack.config, stack.config.queues.results, 60_000, (got) => got.length > 0);
    expect(results).toHaveLength(1);
    const [result] = results;
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ request_id: 'bundle-1', app_id: 'bundled', staging_info: { start_command: 'python3 app.py' } });
    const droplet = new URL(result.droplet!.uri);
    const head = await s3Client(stack.config).send(new HeadObjectCommand({ Bucket: droplet.host, Key: droplet.pathname.slice(1) }));
    expect(head.ContentLength).toBe(result.droplet!.size);
    // The result is sent before the invocation returns: wait for its answer.
    for (let waited = 0; invocations.length === 0 && waited < 10_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    expect(invocations).toHaveLength(1);
    expect(invocations[0].response).toEqual({ batchItemFailures: [] });
  });

  it('is small (goal: 1.5 MB; its cold import time is measured by test/bench/lambda-bundle.ts)', () => {
    const size = statSync(join(dir, 'fn', 'index.mjs')).size;
    console.log(`stager bundle: ${(size / 1024 / 1024).toFixed(2)} MB`);
    expect(size).toBeLessThan(1.5 * 1024 * 1024);
  });
});
