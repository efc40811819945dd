import { beforeAll, describe, expect, it } from 'vitest';
import { allow, arn, logicalId, objectsOf, permissionsOf, resourcesOfType, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

let s: Synthesized;
let fn: Record<string, any>;
let stagerFn: Record<string, any>;
beforeAll(() => {
  s = synthesize();
  fn = s.json.Resources[logicalId(s.stack.builder.function)].Properties;
  stagerFn = s.json.Resources[logicalId(s.stack.stager.function)].Properties;
});

const prefixed = (bucket: Parameters<typeof arn>[0], prefix: string) => ({ 'Fn::Join': ['', [arn(bucket), prefix]] });

describe('builder function', () => {
  it('runs like the stager: same runtime, size, timeout and layers, its own role and log group', () => {
    const same = ['Runtime', 'Handler', 'Architectures', 'MemorySize', 'EphemeralStorage', 'Timeout', 'Layers'];
    const pick = (props: Record<string, any>) => Object.fromEntries(same.map((k) => [k, props[k]]));
    // The stager's values are pinned in stager-function.test.ts, its layer in runtime-layer.test.ts.
    expect(pick(fn)).toEqual(pick(stagerFn));
    expect(fn.Role).toEqual(arn(s.stack.builder.role));
    expect(fn.LoggingConfig).toEqual({ LogGroup: { Ref: logicalId(s.stack.builder.logGroup) } });
    expect(s.json.Resources[logicalId(s.stack.builder.logGroup)]).toMatchObject({ Properties: { RetentionInDays: 90 }, DeletionPolicy: 'Retain' });
  });

  it("is told the stager's environment, less the results queue and the builder's own names", () => {
    const { DROPWARDEN_RESULTS_QUEUE_URL, DROPWARDEN_BUILDER_FUNCTION, DROPWARDEN_BUILDER_DATA_ROLE_ARN, ...shared } = stagerFn.Environment.Variables;
    // The stager's environment is pinned in stager-function.test.ts.
    expect([DROPWARDEN_RESULTS_QUEUE_URL, DROPWARDEN_BUILDER_FUNCTION, DROPWARDEN_BUILDER_DATA_ROLE_ARN].map(Boolean)).toEqual([true, true, true]);
    expect(fn.Environment.Variables).toEqual(shared);
    expect(Object.keys(shared).sort()).toEqual([
      'DROPWARDEN_APPS_BUCKET',
      'DROPWARDEN_CACHE_BUCKET',
      'DROPWARDEN_DROPLETS_BUCKET',
      'DROPWARDEN_SANDBOX',
      'DROPWARDEN_STAGING_DEADLINE_SECONDS',
      'POWERTOOLS_LOG_LEVEL',
      'POWERTOOLS_METRICS_NAMESPACE',
      'POWERTOOLS_SERVICE_NAME',
    ]);
  });

  it('has no event source and no resource policy: only the stager, through its role, invokes it', () => {
    const names = (type: string) => resourcesOfType(s.json, type).map(([, r]) => JSON.stringify(r.Properties.FunctionName));
    expect(names('AWS::Lambda::EventSourceMapping')).toEqual([JSON.stringify({ Ref: logicalId(s.stack.stager.function) })]);
    expect(names('AWS::Lambda::Permission')).toEqual([]);
    expect(fn.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('may write its own logs and nothing else', () => {
    const permissions = permissionsOf(s.json, s.stack.builder.role);
    expect(permissions).toEqual(allow(['logs:CreateLogStream', 'logs:PutLogEvents'], [arn(s.stack.builder.logGroup)]).sort());
    expect(permissions.filter((p) => /^Allow (s3|sqs|dynamodb|lambda|sts):/.test(p))).toEqual([]);
    expect(s.json.Resources[logicalId(s.stack.builder.role)].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
  });
});

describe('builder-data role', () => {
  it('may be assumed by the stager role only', () => {
    expect(s.json.Resources[logicalId(s.stack.builder.dataRole)].Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: arn(s.stack.stager.role) } }],
    });
  });

  it("allows at most what a build does, which the stager's session policy narrows to one request", () => {
    const { apps, droplets, cache } = s.stack.storage;
    expect(permissionsOf(s.json, s.stack.builder.dataRole)).toEqual(
      [
        ...allow(['s3:ListBucket'], [arn(apps), arn(droplets), arn(cache)]),
        ...allow(['s3:GetObject'], [objectsOf(apps)]),
        ...allow(['s3:PutObject', 's3:AbortMultipartUpload'], [prefixed(droplets, '/.builds/*'), prefixed(droplets, '/.logs/*')]),
        ...allow(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], [objectsOf(cache)]),
      ].sort(),
    );
  });
});
