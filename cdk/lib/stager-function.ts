/**
 * The stager Lambda: functions/stager/handler.ts bundled by the local esbuild, fed by the staging
 * queue, allowed exactly the bucket and queue operations a staging task performs, and the
 * builder's invocation and data role (DESIGN §8).
 */
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import { SETTING } from '../../contracts/settings.ts';
import type { BuilderFunction } from './builder-function.ts';
import type { StagerSettings } from './config.ts';
import { acknowledge, arnRef } from './nag.ts';
import type { Queues } from './queues.ts';
import { grantLogs, runtimeLayer, stagingLambda } from './staging-lambda.ts';
import type { Storage } from './storage.ts';

export interface StagerFunctionProps {
  settings: StagerSettings;
  storage: Storage;
  queues: Queues;
  /** The repository root: esbuild's project root and where the lock file lives. */
  projectRoot: string;
  /** The handler module, exporting `handler`. */
  entry: string;
  logRetention: RetentionDays;
}

export class StagerFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly runtimeLayer?: ILayerVersion;

  constructor(scope: Construct, id: string, props: StagerFunctionProps) {
    super(scope, id);
    const { settings, storage, queues } = props;

    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.runtimeLayer = runtimeLayer(this, settings.runtimeLayerDir);

    this.function = stagingLambda(this, 'Function', {
      settings,
      storage,
      projectRoot: props.projectRoot,
      entry: props.entry,
      role: this.role,
      logGroup: this.logGroup,
      runtimeLayer: this.runtimeLayer,
      environment: { [SETTING.resultsQueueUrl]: queues.results.queue.queueUrl },
    });

    this.function.addEventSource(
      new SqsEventSource(queues.staging.queue, {
        batchSize: settings.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: settings.maxConcurrency,
      }),
    );

    this.grant(props, queues);
  }

  /** Hands each build to `builder`: invoke it, and assume its data role for the build's credentials. */
  useBuilder(builder: BuilderFunction, droplets: Bucket): void {
    this.function.addEnvironment(SETTING.builderFunction, builder.function.functionName);
    this.function.addEnvironment(SETTING.builderDataRoleArn, builder.dataRole.roleArn);
    this.role.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [builder.function.functionArn] }));
    this.role.addToPolicy(new PolicyStatement({ actions: ['sts:AssumeRole'], resources: [builder.dataRole.roleArn] }));
    // A build's droplet goes once the stager has checked and published it.
    this.role.addToPolicy(new PolicyStatement({ actions: ['s3:DeleteObject'], resources: [droplets.arnForObjects(`${DEFAULT_BUILDS_PREFIX}*`)] }));
    acknowledge(
      this.role.node.findChild('DefaultPolicy'),
      `AwsSolutions-IAM5[Resource::${arnRef(droplets)}/${DEFAULT_BUILDS_PREFIX}*]`,
      "Each build's key is named by its request (a hash): only the builds prefix may be deleted.",
    );
  }

  private grant(props: StagerFunctionProps, queues: Queues): void {
    const { storage, settings } = props;
    const objects = (bucket: Bucket) => bucket.arnForObjects('*');
    const statements = [
      // ListBucket turns a missing key into a 404 the task reports, instead of a 403.
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [storage.apps.bucketArn, storage.droplets.bucketArn, storage.cache.bucketArn],
      }),
      new PolicyStatement({ actions: ['s3:GetObject'], resources: [objects(storage.apps)] }),
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: [objects(storage.droplets), objects(storage.cache)],
      }),
      new PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: [queues.results.queue.queueArn, ...settings.replyToQueueArns],
      }),
    ];
    // Consuming the staging queue is granted by the SqsEventSource itself.
    for (const statement of statements) this.role.addToPolicy(statement);

    const policy = this.role.node.findChild('DefaultPolicy');
    for (const bucket of [storage.apps, storage.droplets, storage.cache]) {
      acknowledge(policy, `AwsSolutions-IAM5[Resource::${arnRef(bucket)}/*]`, 'Object keys are chosen per request (app id, content hash): the grant is one bucket wide.');
    }
    grantLogs(this.role, this.logGroup);
  }
}
