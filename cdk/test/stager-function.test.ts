import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allow, arn, bundleDir, logicalId, objectsOf, permissionsOf, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

let s: Synthesized;
let fn: Record<string, any>;
beforeAll(() => {
  s = synthesize({ bundle: true });
  fn = s.json.Resources[logicalId(s.stack.stager.function)].Properties;
});

describe('stager function', () => {
  it('runs the handler on nodejs22.x, sized for staging', () => {
    expect(fn).toMatchObject({
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Architectures: ['x86_64'],
      MemorySize: 3584,
      EphemeralStorage: { Size: 10240 },
      Timeout: 900,
      LoggingConfig: { LogGroup: { Ref: logicalId(s.stack.stager.logGroup) } },
      Role: arn(s.stack.stager.role),
    });
    expect(fn.Layers).toBeUndefined();
  });

  it('is told the stack it belongs to, and a deadline that leaves time to send the result', () => {
    const ref = (c: Parameters<typeof logicalId>[0]) => ({ Ref: logicalId(c) });
    expect(fn.Environment.Variables).toEqual({
      DROPWARDEN_APPS_BUCKET: ref(s.stack.storage.apps),
      DROPWARDEN_DROPLETS_BUCKET: ref(s.stack.storage.droplets),
      DROPWARDEN_CACHE_BUCKET: ref(s.stack.storage.cache),
      DROPWARDEN_RESULTS_QUEUE_URL: ref(s.stack.queues.results.queue),
      DROPWARDEN_STAGING_DEADLINE_SECONDS: '840',
      DROPWARDEN_SANDBOX: 'env-only', // no namespaces on Lambda (DESIGN §8)
      DROPWARDEN_BUILDER_FUNCTION: ref(s.stack.builder.function),
      DROPWARDEN_BUILDER_DATA_ROLE_ARN: arn(s.stack.builder.dataRole),
      POWERTOOLS_SERVICE_NAME: 'stager',
      POWERTOOLS_METRICS_NAMESPACE: 'dropwarden',
      POWERTOOLS_LOG_LEVEL: 'INFO',
    });
  });

  it('consumes the staging queue with partial batch failures and a concurrency cap', () => {
    s.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(s.stack.queues.staging.queue),
      FunctionName: { Ref: logicalId(s.stack.stager.function) },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('keeps its logs for the configured time', () => {
    s.template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 90 },
      DeletionPolicy: 'Retain',
    });
  });

  it('may do exactly what staging needs, nothing wider', () => {
    const { apps, droplets, cache } = s.stack.storage;
    const { staging, results } = s.stack.queues;
    expect(permissionsOf(s.json, s.stack.stager.role)).toEqual(
      [
        // the event source mapping
        ...allow(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'], [arn(staging.queue)]),
        // download the app; 404 rather than 403 for a missing key
        ...allow(['s3:ListBucket'], [arn(apps), arn(cache), arn(droplets)]),
        ...allow(['s3:GetObject'], [objectsOf(apps)]),
        // droplets, claims and cache: read, conditional and multipart writes
        ...allow(['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], [objectsOf(cache), objectsOf(droplets)]),
        ...allow(['sqs:SendMessage'], [arn(results.queue)]),
        ...allow(['logs:CreateLogStream', 'logs:PutLogEvents'], [arn(s.stack.stager.logGroup)]),
        // hand each build to the builder, with credentials from its data role
        ...allow(['lambda:InvokeFunction'], [arn(s.stack.builder.function)]),
        ...allow(['sts:AssumeRole'], [arn(s.stack.builder.dataRole)]),
        // and remove the build's droplet once checked and published
        ...allow(['s3:DeleteObject'], [{ 'Fn::Join': ['', [arn(droplets), '/.builds/*']] }]),
      ].sort(),
    );
    // No managed policy (AWSLambdaBasicExecutionRole would allow every log group).
    s.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] },
      ManagedPolicyArns: Match.absent(),
    });
  });
});

describe('bundle', () => {
  it.each(['stager', 'builder'] as const)('%s: one ES module built by the local esbuild, AWS SDK included, under 1.5 MB', (name) => {
    const file = join(bundleDir(s, s.stack[name].function), 'index.mjs');
    const size = statSync(file).size;
    expect(size).toBeLessThan(1.5 * 1024 * 1024);
    const code = readFileSync(file, 'utf8');
    expect(code).toMatch(/export\s*\{[^}]*\bhandler\b/);
    expect(code).not.toMatch(/from\s*["']@aws-sdk\//);
  });

  it('is one per function', () => {
    expect(bundleDir(s, s.stack.builder.function)).not.toBe(bundleDir(s, s.stack.stager.function));
  });
});
