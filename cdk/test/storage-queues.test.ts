import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { STACK_OUTPUTS } from '../../cli/stack-outputs.ts';
import { OUTPUT } from '../../contracts/stack-outputs.ts';
import { arn, logicalId, resourcesOfType, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

describe('buckets', () => {
  const names = ['apps', 'droplets', 'cache'] as const;

  it('are four: apps, droplets, cache and their access-log bucket', () => {
    s.template.resourceCountIs('AWS::S3::Bucket', 4);
  });

  it.each(names)('%s: encrypted, public access blocked, owner-enforced, logged', (name) => {
    const bucket = s.json.Resources[logicalId(s.stack.storage[name])].Properties;
    expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }]);
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.OwnershipControls.Rules).toEqual([{ ObjectOwnership: 'BucketOwnerEnforced' }]);
    expect(bucket.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logicalId(s.stack.storage.accessLogs) },
      LogFilePrefix: `${name}/`,
    });
  });

  it.each([...names, 'accessLogs'] as const)('%s: refuses requests without TLS (and below TLS 1.2 for data buckets)', (name) => {
    const bucket = s.stack.storage[name];
    const [, policy] = resourcesOfType(s.json, 'AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === logicalId(bucket))!;
    const denies = policy.Properties.PolicyDocument.Statement.filter((st: any) => st.Effect === 'Deny');
    expect(denies).toContainEqual(
      expect.objectContaining({
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        Principal: { AWS: '*' },
      }),
    );
    if (name !== 'accessLogs') {
      expect(denies).toContainEqual(
        expect.objectContaining({
          Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
        }),
      );
    }
  });

  it('lifecycle: apps 30 d, droplets to IA at 30 d and gone at 365 d (request claims 15 d, live logs 7 d, build uploads 1 d), cache 14 d, multipart uploads aborted after 1 d', () => {
    const rules = (name: 'apps' | 'droplets' | 'cache' | 'accessLogs') => s.json.Resources[logicalId(s.stack.storage[name])].Properties.LifecycleConfiguration.Rules;
    const abort = { Id: 'abort-incomplete-uploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' };
    expect(rules('apps')).toEqual([{ Id: 'expire-app-uploads', ExpirationInDays: 30, Status: 'Enabled' }, abort]);
    expect(rules('droplets')).toEqual([
      {
        Id: 'age-out-droplets',
        ExpirationInDays: 365,
        Status: 'Enabled',
        Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }],
      },
      { Id: 'expire-request-claims', Prefix: '.requests/', ExpirationInDays: 15, Status: 'Enabled' },
      { Id: 'expire-live-logs', Prefix: '.logs/', ExpirationInDays: 7, Status: 'Enabled' },
      { Id: 'expire-builds', Prefix: '.builds/', ExpirationInDays: 1, Status: 'Enabled' },
      abort,
    ]);
    expect(rules('cache')).toEqual([{ Id: 'expire-cache-entries', ExpirationInDays: 14, Status: 'Enabled' }, abort]);
    expect(rules('accessLogs')).toEqual([{ Id: 'expire-logs', ExpirationInDays: 90, Status: 'Enabled' }, abort]);
  });

  it('are kept when the stack is deleted (droplets of running apps live there)', () => {
    for (const name of names) {
      expect(s.json.Resources[logicalId(s.stack.storage[name])]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });
});

describe('queues', () => {
  const names = ['staging', 'results', 'start', 'events'] as const;

  it('are eight: four queues and a dead-letter queue for each', () => {
    s.template.resourceCountIs('AWS::SQS::Queue', 8);
  });

  it.each(names)('%s: encrypted, kept 14 days, redriven to its own DLQ', (name) => {
    const { queue, dlq } = s.stack.queues[name];
    const props = s.json.Resources[logicalId(queue)].Properties;
    expect(props.SqsManagedSseEnabled).toBe(true);
    expect(props.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(props.RedrivePolicy).toEqual({ deadLetterTargetArn: arn(dlq), maxReceiveCount: 5 });
    const dlqProps = s.json.Resources[logicalId(dlq)].Properties;
    expect(dlqProps.SqsManagedSseEnabled).toBe(true);
    expect(dlqProps.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(dlqProps.RedrivePolicy).toBeUndefined();
  });

  it.each(
    names.flatMap(
      (n) =>
        [
          [n, 'queue'],
          [n, 'dlq'],
        ] as const,
    ),
  )('%s %s: refuses requests without TLS', (name, which) => {
    const queue = s.stack.queues[name][which];
    const [, policy] = resourcesOfType(s.json, 'AWS::SQS::QueuePolicy').find(([, p]) => p.Properties.Queues.some((q: any) => q.Ref === logicalId(queue)))!;
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: 'sqs:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });

  it('staging hides a message for at least 6x the function timeout, and retries at least 5 times', () => {
    const fn = s.json.Resources[logicalId(s.stack.stager.function)].Properties;
    const staging = s.json.Resources[logicalId(s.stack.queues.staging.queue)].Properties;
    expect(staging.VisibilityTimeout).toBeGreaterThanOrEqual(6 * fn.Timeout);
    expect(staging.VisibilityTimeout).toBe(5400);
    expect(staging.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(5);
  });

  it('start hides a message long enough to start an instance', () => {
    expect(s.json.Resources[logicalId(s.stack.queues.start.queue)].Properties.VisibilityTimeout).toBe(300);
  });
});

describe('outputs the CLI reads', () => {
  it('have stable names and point at the right resources', () => {
    const ref = (c: Parameters<typeof logicalId>[0]) => ({ Ref: logicalId(c) });
    const { queues, storage } = s.stack;
    const expected: Record<string, unknown> = {
      [OUTPUT.region]: { Ref: 'AWS::Region' },
      [OUTPUT.stagingQueueUrl]: ref(queues.staging.queue),
      [OUTPUT.stagingDlqUrl]: ref(queues.staging.dlq),
      [OUTPUT.resultsQueueUrl]: ref(queues.results.queue),
      [OUTPUT.resultsDlqUrl]: ref(queues.results.dlq),
      [OUTPUT.startQueueUrl]: ref(queues.start.queue),
      [OUTPUT.startDlqUrl]: ref(queues.start.dlq),
      [OUTPUT.eventsQueueUrl]: ref(queues.events.queue),
      [OUTPUT.eventsDlqUrl]: ref(queues.events.dlq),
      [OUTPUT.appsBucketName]: ref(storage.apps),
      [OUTPUT.dropletsBucketName]: ref(storage.droplets),
      [OUTPUT.cacheBucketName]: ref(storage.cache),
      [OUTPUT.stagerFunctionName]: ref(s.stack.stager.function),
      [OUTPUT.clusterName]: ref(s.stack.hosts.cluster),
      [OUTPUT.dashboardName]: ref(s.stack.operations.dashboard),
      [OUTPUT.routeTemplate]: 'http://{app}.apps.example.com',
      [OUTPUT.routeDomain]: 'apps.example.com',
      [OUTPUT.loadBalancerDnsName]: { 'Fn::GetAtt': [logicalId(s.stack.routes.loadBalancer), 'DNSName'] },
    };
    expect(Object.keys(s.json.Outputs).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, value] of Object.entries(expected)) {
      s.template.hasOutput(name, { Value: value, Export: Match.absent() });
    }
    expect(Object.values(OUTPUT).sort()).toEqual([
      'AppsBucketName',
      'CacheBucketName',
      'ClusterName',
      'DashboardName',
      'DropletsBucketName',
      'EventsDlqUrl',
      'EventsQueueUrl',
      'LoadBalancerDnsName',
      'Region',
      'ResultsDlqUrl',
      'ResultsQueueUrl',
      'RouteDomain',
      'RouteTemplate',
      'StagerFunctionName',
      'StagingDlqUrl',
      'StagingQueueUrl',
      'StartDlqUrl',
      'StartQueueUrl',
    ]);
  });

  it('include every output `dropwarden config --stack` reads', () => {
    expect(Object.keys(s.json.Outputs)).toEqual(expect.arrayContaining(Object.values(STACK_OUTPUTS)));
  });
});
