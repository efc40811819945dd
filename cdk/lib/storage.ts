/**
 * The three buckets (apps, droplets, cache) and the bucket that receives their access logs.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, StorageClass } from 'aws-cdk-lib/aws-s3';
import type { LifecycleRule } from 'aws-cdk-lib/aws-s3';
import { DEFAULT_CLAIMS_PREFIX, DEFAULT_LIVE_LOG_PREFIX } from '../../contracts/bucket-keys.ts';
import { DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import { Construct } from 'constructs';
import type { RetentionSettings } from './config.ts';

export interface StorageProps {
  retention: RetentionSettings;
}

export class Storage extends Construct {
  readonly apps: Bucket;
  readonly droplets: Bucket;
  readonly cache: Bucket;
  readonly accessLogs: Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const { retention } = props;

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      // S3 server access logging can only deliver to SSE-S3 buckets that grant the log service
      // through the bucket policy (BUCKET_OWNER_ENFORCED), which CDK writes for us.
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [
        { id: 'expire-logs', expiration: Duration.days(retention.logsDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log bucket itself; logging it into itself would loop.',
    });

    this.apps = this.bucket('Apps', 'apps/', [{ id: 'expire-app-uploads', expiration: Duration.days(retention.appsDays) }]);
    this.droplets = this.bucket('Droplets', 'droplets/', [
      {
        id: 'age-out-droplets',
        // Keys are content-addressed and never overwritten, so age is the only signal of "old".
        transitions: [{ storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }],
        expiration: Duration.days(retention.dropletsDays),
      },
      // Request claims must outlive any redelivery of their message (SQS keeps one 14 days at
      // most), or a late duplicate would be staged and answered again.
      { id: 'expire-request-claims', prefix: DEFAULT_CLAIMS_PREFIX, expiration: Duration.days(15) },
      { id: 'expire-live-logs', prefix: DEFAULT_LIVE_LOG_PREFIX, expiration: Duration.days(7) },
      // A build's upload is needed only until the stager has checked it (minutes).
      { id: 'expire-builds', prefix: DEFAULT_BUILDS_PREFIX, expiration: Duration.days(1) },
    ]);
    this.cache = this.bucket('Cache', 'cache/', [{ id: 'expire-cache-entries', expiration: Duration.days(retention.cacheDays) }]);
  }

  private bucket(id: string, logPrefix: string, rules: LifecycleRule[]): Bucket {
    return new Bucket(this, id, {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: logPrefix,
      lifecycleRules: [...rules, { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
  }
}
