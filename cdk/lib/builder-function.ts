/**
 * The builder (DESIGN §8): functions/builder/handler.ts, the Lambda function that runs each
 * staging's untrusted build. Its own role allows logs only. The credentials a build gets come
 * from the builder-data role, which only the stager may assume, with a session policy that
 * narrows it to one request's objects; this role's permissions are the ceiling of that policy.
 */
import { ArnPrincipal, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_LIVE_LOG_PREFIX } from '../../contracts/bucket-keys.ts';
import { DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import type { StagerSettings } from './config.ts';
import { acknowledge, arnRef } from './nag.ts';
import { grantLogs, stagingLambda } from './staging-lambda.ts';
import type { Storage } from './storage.ts';

export interface BuilderFunctionProps {
  settings: StagerSettings;
  storage: Storage;
  projectRoot: string;
  /** The handler module, exporting `handler`. */
  entry: string;
  logRetention: RetentionDays;
  runtimeLayer?: ILayerVersion;
  /** The one principal that may assume the data role. */
  stagerRole: IRole;
}

export class BuilderFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  /** What a build's credentials may reach at most. */
  readonly dataRole: Role;

  constructor(scope: Construct, id: string, props: BuilderFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    grantLogs(this.role, this.logGroup);

    this.function = stagingLambda(this, 'Function', {
      settings: props.settings,
      storage: props.storage,
      projectRoot: props.projectRoot,
      entry: props.entry,
      role: this.role,
      logGroup: this.logGroup,
      runtimeLayer: props.runtimeLayer,
    });

    this.dataRole = new Role(this, 'DataRole', {
      assumedBy: new ArnPrincipal(props.stagerRole.roleArn),
      description: "A build's credentials: the stager assumes it with a session policy for one request's objects",
    });
    this.grantData(props.storage);
  }

  private grantData(storage: Storage): void {
    const { apps, droplets, cache } = storage;
    const statements = [
      // ListBucket turns a missing key into a 404 the build reports, instead of a 403.
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [apps.bucketArn, droplets.bucketArn, cache.bucketArn] }),
      new PolicyStatement({ actions: ['s3:GetObject'], resources: [apps.arnForObjects('*')] }),
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: [droplets.arnForObjects(`${DEFAULT_BUILDS_PREFIX}*`), droplets.arnForObjects(`${DEFAULT_LIVE_LOG_PREFIX}*`)],
      }),
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [cache.arnForObjects('*')],
      }),
    ];
    for (const statement of statements) this.dataRole.addToPolicy(statement);

    const policy = this.dataRole.node.findChild('DefaultPolicy');
    const reason = "Narrowed per request by the stager's session policy to that request's own objects.";
    for (const resource of [
      `${arnRef(apps)}/*`,
      `${arnRef(droplets)}/${DEFAULT_BUILDS_PREFIX}*`,
      `${arnRef(droplets)}/${DEFAULT_LIVE_LOG_PREFIX}*`,
      `${arnRef(cache)}/*`,
    ]) {
      acknowledge(policy, `AwsSolutions-IAM5[Resource::${resource}]`, reason);
    }
  }
}
