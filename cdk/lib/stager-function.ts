/**
 * The stager Lambda: functions/stager/handler.ts bundled by the local esbuild, fed by the staging
 * queue, allowed exactly the bucket and queue operations a staging task performs.
 */
import { existsSync } from 'node:fs';
import { Duration, Size } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StagerSettings } from './config.ts';
import { acknowledge, arnRef } from './nag.ts';
import type { Queues } from './queues.ts';
import { METRICS_NAMESPACE, STAGER_SERVICE } from '../../contracts/metrics.ts';
import { SETTING } from '../../contracts/settings.ts';
import { POWERTOOLS } from './runtime-environment.ts';
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

/** Seconds the task's own deadline leaves before the Lambda timeout, to send its result. */
const RESULT_MARGIN_SECONDS = 60;

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

    const environment: Record<string, string> = {
      [SETTING.appsBucket]: storage.apps.bucketName,
      [SETTING.dropletsBucket]: storage.droplets.bucketName,
      [SETTING.cacheBucket]: storage.cache.bucketName,
      [SETTING.resultsQueueUrl]: queues.results.queue.queueUrl,
      // No namespaces on Lambda: plugin programs get only the scrubbed environment until the
      // builder function exists (DESIGN §8).
      [SETTING.sandbox]: 'env-only',
      [SETTING.stagingDeadlineSeconds]: String(settings.timeoutSeconds - RESULT_MARGIN_SECONDS),
      [POWERTOOLS.serviceName]: STAGER_SERVICE,
      [POWERTOOLS.metricsNamespace]: METRICS_NAMESPACE,
      [POWERTOOLS.logLevel]: 'INFO',
    };
    if (this.runtimeLayer) {
      // The layer is resources/build-runtimes.sh's output, unpacked at /opt.
      environment[SETTING.runtimesDir] = '/opt';
      environment[SETTING.npmCli] = '/opt/npm/bin/npm-cli.js';
    }

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: `${props.projectRoot}/package-lock.json`,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.X86_64,
      memorySize: settings.memoryMb,
      ephemeralStorageSize: Size.mebibytes(settings.ephemeralStorageMb),
      timeout: Duration.seconds(settings.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      layers: this.runtimeLayer ? [this.runtimeLayer] : [],
      environment,
      bundling: {
        forceDockerBundling: false,
        // The deployed bundle is the tested bundle: the SDK goes in too, not the runtime's copy.
        bundleAwsSDK: true,
        externalModules: [],
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        mainFields: ['module', 'main'],
        // CommonJS dependencies inside an ESM bundle still call require() for Node built-ins.
        banner: "import { createRequire as __dwCreateRequire } from 'node:module'; const require = __dwCreateRequire(import.meta.url);",
      },
    });

    acknowledge(this.function, 'AwsSolutions-L1', 'Pinned to nodejs22.x on purpose: the project targets and is tested on Node 22 (package.json engines).');

    this.function.addEventSource(
      new SqsEventSource(queues.staging.queue, {
        batchSize: settings.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: settings.maxConcurrency,
      }),
    );

    this.grant(props, queues);
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
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    ];
    // Consuming the staging queue is granted by the SqsEventSource itself.
    for (const statement of statements) this.role.addToPolicy(statement);

    const policy = this.role.node.findChild('DefaultPolicy');
    for (const bucket of [storage.apps, storage.droplets, storage.cache]) {
      acknowledge(policy, `AwsSolutions-IAM5[Resource::${arnRef(bucket)}/*]`, 'Object keys are chosen per request (app id, content hash): the grant is one bucket wide.');
    }
    acknowledge(policy, `AwsSolutions-IAM5[Resource::${arnRef(this.logGroup)}]`, "A log group's ARN ends in :* to cover its streams, which Lambda names at run time.");
  }
}

function runtimeLayer(scope: Construct, dir: string | undefined): ILayerVersion | undefined {
  if (!dir) return undefined;
  if (!existsSync(dir)) {
    throw new Error(`context dropwarden:runtimeLayerDir points at ${dir}, which does not exist: build it with the resources/ scripts first`);
  }
  return new LayerVersion(scope, 'RuntimeBundles', {
    code: Code.fromAsset(dir),
    compatibleRuntimes: [Runtime.NODEJS_22_X],
    compatibleArchitectures: [Architecture.X86_64],
    description: 'Runtime bundles (Tomcat, npm) that staging plugins copy into droplets',
  });
}
