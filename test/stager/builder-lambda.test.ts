/**
 * The builder on AWS (functions/stager/builder/, DESIGN §8) against stubbed STS and Lambda
 * control planes (aws-sdk-client-mock answers the real @aws-sdk clients): the stager assumes
 * the builder-data role with a session policy that names exactly this request's objects, and
 * invokes the builder with those credentials; the builder's report becomes the task's outcome.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { BuildJob, buildDropletKey, DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import { StagingRequest } from '../../contracts/staging.ts';
import { lambdaBuilder } from '../../functions/stager/builder/lambda.ts';
import { buildScope, sessionPolicy } from '../../functions/stager/builder/scope.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { RetryableError } from '../../functions/stager/errors.ts';
import { stageRequest } from '../../functions/stager/stage-request.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { S3Client } from '@aws-sdk/client-s3';

const config = stagerConfigFromEnv({
  AWS_REGION: 'eu-west-1',
  DROPWARDEN_APPS_BUCKET: 'dw-apps',
  DROPWARDEN_DROPLETS_BUCKET: 'dw-droplets',
  DROPWARDEN_CACHE_BUCKET: 'dw-cache',
  DROPWARDEN_RESULTS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/results',
});
const ROLE = 'arn:aws:iam::123456789012:role/Dropwarden-BuilderData';
const FUNCTION = 'Dropwarden-Builder';
const request = StagingRequest.parse({ app_id: 'hello', download_uri: 's3://dw-apps/uploads/hello.zip', properties: { meta: { command: 'python3 app.py' } } });
const requestId = 'req-1';
const buildKey = buildDropletKey(DEFAULT_BUILDS_PREFIX, requestId);

const sts = mockClient(STSClient);
const lambda = mockClient(LambdaClient);
const builder = () =>
  lambdaBuilder({ functionName: FUNCTION, dataRoleArn: ROLE, config, sts: new STSClient({ region: 'eu-west-1' }), lambda: new LambdaClient({ region: 'eu-west-1' }) });
const input = (log = new TaskLog()) => ({ request, requestId, buildKey, deadlineSeconds: 600, log });
const payload = (body: unknown) => ({ $metadata: {}, StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(body)) as any });
const creds = { AccessKeyId: 'ASIAEXAMPLE', SecretAccessKey: 'secret', SessionToken: 'token', Expiration: new Date('2026-12-02T20:00:00Z') };
const builtResult = {
  request_id: requestId,
  app_id: 'hello',
  task_id: 't1',
  task_log: '[2026-12-02 19:00:00] Downloading application\n',
  droplet: { uri: `s3://dw-droplets/${buildKey}`, sha256: 'a'.repeat(64), sha1: 'b'.repeat(40), size: 123 },
  staging_info: { framework: 'standalone', start_command: 'python3 app.py', detected: false },
  timings_ms: { download: 1 },
};

beforeEach(() => {
  sts.reset();
  lambda.reset();
  sts.on(AssumeRoleCommand).resolves({ $metadata: {}, Credentials: creds });
});

describe('the session policy', () => {
  it("names exactly the request's archive, its build key, its app's cache and its live log", () => {
    const scope = buildScope(config, request, requestId, buildKey);
    expect(sessionPolicy(scope, 'aws')).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject'], Resource: 'arn:aws:s3:::dw-apps/uploads/hello.zip' },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: 'arn:aws:s3:::dw-apps', Condition: { StringEquals: { 's3:prefix': ['uploads/hello.zip'] } } },
        { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: `arn:aws:s3:::dw-droplets/${buildKey}` },
        {
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
          Resource: 'arn:aws:s3:::dw-cache/hello/build-cache.tgz',
        },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: 'arn:aws:s3:::dw-cache', Condition: { StringEquals: { 's3:prefix': ['hello/build-cache.tgz'] } } },
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: expect.stringMatching(/^arn:aws:s3:::dw-droplets\/\.logs\/[0-9a-f]{64}\.log$/) },
      ],
    });
    expect(buildKey).toMatch(/^\.builds\/[0-9a-f]{64}\/droplet\.tgz$/);
  });

  it('an https archive gets no S3 grant; no cache bucket, no cache grant', () => {
    const noCache = { ...config, stack: { ...config.stack, buckets: { ...config.stack.buckets, cache: '' } } };
    const https = StagingRequest.parse({ ...request, download_uri: 'https://example.com/app.zip' });
    const actions = sessionPolicy(buildScope(noCache, https, requestId, buildKey), 'aws-cn').Statement.map((s) => [s.Action, s.Resource]);
    expect(actions).toEqual([
      [['s3:PutObject', 's3:AbortMultipartUpload'], `arn:aws-cn:s3:::dw-droplets/${buildKey}`],
      [['s3:PutObject'], expect.stringMatching(/^arn:aws-cn:s3:::dw-droplets\/\.logs\//)],
    ]);
  });
});

describe('invoking the builder function', () => {
  it('assumes the data role with the scoped policy for 15 minutes, then invokes the builder with those credentials only', async () => {
    lambda.on(InvokeCommand).resolves(payload({ outcome: 'built', result: builtResult }));
    const log = new TaskLog();
    const outcome = await builder().build(input(log));
    expect(outcome).toEqual({ result: builtResult });
    const assumed = sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input);
    expect(assumed).toEqual([
      {
        RoleArn: ROLE,
        RoleSessionName: expect.stringMatching(/^build-[0-9a-f]{16}$/),
        DurationSeconds: 900,
        Policy: JSON.stringify(sessionPolicy(buildScope(config, request, requestId, buildKey), 'aws')),
      },
    ]);
    const invoked = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input);
    expect(invoked.map((i) => [i.FunctionName, i.InvocationType])).toEqual([[FUNCTION, 'RequestResponse']]);
    const job = BuildJob.parse(JSON.parse(invoked[0].Payload as string));
    expect(job).toEqual({
      request_id: requestId,
      request,
      // The deadline less the time the stager keeps to check and publish the droplet.
      deadline_seconds: 540,
      droplet_key: buildKey,
      credentials: { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token', expiration: '2026-12-02T20:00:00.000Z' },
    });
    // The builder's log lines join the stager's task log as they were written.
    expect(log.toString()).toBe(builtResult.task_log);
  });

  it('a builder that says retry: a RetryableError; a failed build: its result and failure', async () => {
    lambda.on(InvokeCommand).resolves(payload({ outcome: 'retry', message: 'uploading s3://dw-droplets/x: SlowDown' }));
    await expect(builder().build(input())).rejects.toThrow(new RetryableError('the build: uploading s3://dw-droplets/x: SlowDown'));
    const failed = { ...builtResult, droplet: undefined, error: 'Staging task failed:\n Staging plugin failed: no' };
    lambda.on(InvokeCommand).resolves(payload({ outcome: 'failed', result: failed, failure: { phase: 'stage', reason: 'no' } }));
    expect(await builder().build(input())).toEqual({ result: JSON.parse(JSON.stringify(failed)), failure: { phase: 'stage', reason: 'no' } });
  });

  it('a builder function that crashed (FunctionError) is answered as an internal failure, not retried into the DLQ', async () => {
    lambda.on(InvokeCommand).resolves({ ...payload({ errorType: 'Runtime.OutOfMemory', errorMessage: 'out of memory' }), FunctionError: 'Unhandled' });
    const outcome = await builder().build(input());
    expect(outcome.failure).toEqual({ phase: 'internal', reason: expect.stringMatching(/^the builder function failed \(Unhandled\): .*Runtime\.OutOfMemory/) });
    expect(outcome.result.error).toMatch(/^Staging task failed:\n Internal stager error: the builder function failed/);
  });

  it('throttled by STS or Lambda: retryable', async () => {
    sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    await expect(builder().build(input())).rejects.toBeInstanceOf(RetryableError);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('keys too long for a session policy: the request is refused with the reason, no role is assumed', async () => {
    const long = StagingRequest.parse({ ...request, download_uri: `s3://dw-apps/${'k'.repeat(1500)}.zip` });
    const outcome = await builder().build({ ...input(), request: long });
    expect(outcome.failure).toEqual({ phase: 'request', reason: expect.stringMatching(/too long for a build's credentials/) });
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(0);
  });
});

describe('a builder that cannot be used still gets the request its one answer', () => {
  const staged = () => stageRequest(request, requestId, { config, s3: new S3Client({ region: 'eu-west-1' }), log: new TaskLog(), builder: builder() });

  it('not allowed to invoke it: an internal failure naming the call, answered, not retried into the DLQ', async () => {
    lambda
      .on(InvokeCommand)
      .rejects(
        Object.assign(new Error('User is not authorized to perform: lambda:InvokeFunction'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }),
      );
    const { result, failure } = await staged();
    expect(failure).toEqual({ phase: 'internal', reason: 'invoking the builder function: User is not authorized to perform: lambda:InvokeFunction' });
    expect(result).toMatchObject({
      request_id: requestId,
      app_id: 'hello',
      error: 'Staging task failed:\n Internal stager error: invoking the builder function: User is not authorized to perform: lambda:InvokeFunction',
    });
    expect(result.droplet).toBeUndefined();
  });

  it('an answer that is not a BuildReport: an internal failure saying what was wrong', async () => {
    lambda.on(InvokeCommand).resolves(payload({ outcome: 'built' }));
    const { failure } = await staged();
    expect(failure).toEqual({ phase: 'internal', reason: expect.stringMatching(/^the builder function's answer is not a BuildReport: result: /) });
    lambda.on(InvokeCommand).resolves({ ...payload(null), Payload: new TextEncoder().encode('not json') as any });
    expect((await staged()).failure).toEqual({ phase: 'internal', reason: expect.stringMatching(/^the builder function answered something that is not JSON/) });
  });

  it('throttled: thrown on, so the message is retried', async () => {
    lambda.on(InvokeCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } }));
    await expect(staged()).rejects.toBeInstanceOf(RetryableError);
  });
});
