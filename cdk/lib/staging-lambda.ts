/**
 * What the stager and the builder functions share (DESIGN §8, §13): the runtime, size and
 * bundling of a Lambda function that stages apps, the runtime layer, and the environment a
 * staging reads.
 */
import { existsSync } from 'node:fs';
import { Duration, Size } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IRole, Role } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { ILogGroup, LogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE, STAGER_SERVICE } from '../../contracts/metrics.ts';
import { SETTING } from '../../contracts/settings.ts';
import type { StagerSettings } from './config.ts';
import { acknowledge, arnRef } from './nag.ts';
import { POWERTOOLS } from './runtime-environment.ts';
import type { Storage } from './storage.ts';

export interface StagingLambdaProps {
  settings: StagerSettings;
  storage: Storage;
  /** The repository root: esbuild's project root and where the lock file lives. */
  projectRoot: string;
  /** The handler module, exporting `handler`. */
  entry: string;
  role: IRole;
  logGroup: ILogGroup;
  runtimeLayer?: ILayerVersion;
  /** Set besides the staging environment. */
  environment?: Record<string, string>;
}

/** Seconds the task's own deadline leaves before the Lambda timeout, to send its result. */
const RESULT_MARGIN_SECONDS = 60;

export function stagingLambda(scope: Construct, id: string, props: StagingLambdaProps): NodejsFunction {
  const { settings, runtimeLayer } = props;
  const fn = new NodejsFunction(scope, id, {
    entry: props.entry,
    handler: 'handler',
    projectRoot: props.projectRoot,
    depsLockFilePath: `${props.projectRoot}/package-lock.json`,
    runtime: Runtime.NODEJS_22_X,
    architecture: Architecture.X86_64,
    memorySize: settings.memoryMb,
    ephemeralStorageSize: Size.mebibytes(settings.ephemeralStorageMb),
    timeout: Duration.seconds(settings.timeoutSeconds),
    role: props.role,
    logGroup: props.logGroup,
    layers: runtimeLayer ? [runtimeLayer] : [],
    environment: { ...stagingEnvironment(settings, props.storage, runtimeLayer), ...props.environment },
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
  acknowledge(fn, 'AwsSolutions-L1', 'Pinned to nodejs22.x on purpose: the project targets and is tested on Node 22 (package.json engines).');
  return fn;
}

function stagingEnvironment(settings: StagerSettings, storage: Storage, runtimeLayer: ILayerVersion | undefined): Record<string, string> {
  const environment: Record<string, string> = {
    [SETTING.appsBucket]: storage.apps.bucketName,
    [SETTING.dropletsBucket]: storage.droplets.bucketName,
    [SETTING.cacheBucket]: storage.cache.bucketName,
    // No namespaces on Lambda: plugin programs, which run in the builder, get only the scrubbed
    // environment (DESIGN §8).
    [SETTING.sandbox]: 'env-only',
    [SETTING.stagingDeadlineSeconds]: String(settings.timeoutSeconds - RESULT_MARGIN_SECONDS),
    [POWERTOOLS.serviceName]: STAGER_SERVICE,
    [POWERTOOLS.metricsNamespace]: METRICS_NAMESPACE,
    [POWERTOOLS.logLevel]: 'INFO',
  };
  if (runtimeLayer) {
    // The layer is resources/build-runtimes.sh's output, unpacked at /opt.
    environment[SETTING.runtimesDir] = '/opt';
    environment[SETTING.npmCli] = '/opt/npm/bin/npm-cli.js';
  }
  return environment;
}

export function runtimeLayer(scope: Construct, dir: string | undefined): ILayerVersion | undefined {
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

/** Lets `role` write to `logGroup` and nowhere else (no AWSLambdaBasicExecutionRole, which allows every log group). */
export function grantLogs(role: Role, logGroup: LogGroup): void {
  role.addToPolicy(new PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
  acknowledge(
    role.node.findChild('DefaultPolicy'),
    `AwsSolutions-IAM5[Resource::${arnRef(logGroup)}]`,
    "A log group's ARN ends in :* to cover its streams, which Lambda names at run time.",
  );
}
