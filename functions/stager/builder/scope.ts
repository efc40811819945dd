/**
 * What one build may touch (DESIGN §8), and the IAM session policy that says so: the builder's
 * credentials come from assuming the builder-data role with this policy, so they reach exactly
 * this request's archive, its build key, its app's cache and its live log, and nothing else.
 */
import type { BuildScope } from '../../../contracts/builder.ts';
import { liveLogKey } from '../../../contracts/bucket-keys.ts';
import type { StagingRequest } from '../../../contracts/staging.ts';
import { parseObjectUri } from '../../../lib/aws/uri.ts';
import { cacheKey } from '../cache.ts';
import type { StagerConfig } from '../config.ts';

export function buildScope(config: StagerConfig, request: StagingRequest, requestId: string, buildKey: string): BuildScope {
  const source = parseObjectUri(request.download_uri);
  const { buckets } = config.stack;
  return {
    ...(source.kind === 's3' ? { archive: { bucket: source.bucket, key: source.key } } : {}),
    droplet: { bucket: buckets.droplets, key: buildKey },
    ...(buckets.cache ? { cache: { bucket: buckets.cache, key: cacheKey(request.app_id) } } : {}),
    liveLog: { bucket: buckets.droplets, key: liveLogKey(config.liveLogPrefix, requestId) },
  };
}

interface Statement {
  Effect: 'Allow';
  Action: string[];
  Resource: string;
  Condition?: Record<string, Record<string, string[]>>;
}

/** The session policy of a build's credentials; `partition` from the role's ARN (aws, aws-cn, aws-us-gov). */
export function sessionPolicy(scope: BuildScope, partition: string): { Version: '2012-10-17'; Statement: Statement[] } {
  const object = (o: { bucket: string; key: string }) => `arn:${partition}:s3:::${o.bucket}/${o.key}`;
  // ListBucket on exactly the key lets a missing object answer 404 (not 403), as the stager's own calls do.
  const list = (o: { bucket: string; key: string }): Statement => ({
    Effect: 'Allow',
    Action: ['s3:ListBucket'],
    Resource: `arn:${partition}:s3:::${o.bucket}`,
    Condition: { StringEquals: { 's3:prefix': [o.key] } },
  });
  const statements: Statement[] = [];
  if (scope.archive) statements.push({ Effect: 'Allow', Action: ['s3:GetObject'], Resource: object(scope.archive) }, list(scope.archive));
  statements.push({ Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: object(scope.droplet) });
  if (scope.cache) {
    statements.push(
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], Resource: object(scope.cache) },
      list(scope.cache),
    );
  }
  statements.push({ Effect: 'Allow', Action: ['s3:PutObject'], Resource: object(scope.liveLog) });
  return { Version: '2012-10-17', Statement: statements };
}
