import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

export interface AwsEndpoint {
  region: string;
  /** A non-AWS endpoint such as the embedded emulator; absent on AWS. */
  endpoint?: string;
}

/**
 * A stand-in endpoint (the embedded emulator) accepts any credentials, so it gets fixed ones
 * and a machine without AWS credentials still reaches it; on AWS the default provider chain applies.
 */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'dropwarden', secretAccessKey: 'dropwarden' } as const;

function credentialsFor(where: AwsEndpoint) {
  return where.endpoint ? EMULATOR_CREDENTIALS : undefined;
}

const cache = new Map<string, S3Client | SQSClient>();

/**
 * A client that holds only the given temporary credentials (a build's, scoped to one request),
 * never the process's own; not cached, so it goes with the build.
 */
export function scopedS3Client(where: AwsEndpoint, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string }): S3Client {
  return new S3Client(s3Options(where, credentials));
}

function s3Options(where: AwsEndpoint, credentials: S3ClientConfig['credentials']): S3ClientConfig {
  return {
    region: where.region,
    endpoint: where.endpoint,
    forcePathStyle: Boolean(where.endpoint),
    credentials,
    // Checksums on every request cost CPU on large parts and the emulator ignores them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

export function s3Client(where: AwsEndpoint): S3Client {
  const key = `s3|${where.region}|${where.endpoint ?? ''}`;
  let client = cache.get(key) as S3Client | undefined;
  if (!client) {
    client = new S3Client(s3Options(where, credentialsFor(where)));
    cache.set(key, client);
  }
  return client;
}

export function sqsClient(where: AwsEndpoint): SQSClient {
  const key = `sqs|${where.region}|${where.endpoint ?? ''}`;
  let client = cache.get(key) as SQSClient | undefined;
  if (!client) {
    client = new SQSClient({ region: where.region, endpoint: where.endpoint, credentials: credentialsFor(where) });
    cache.set(key, client);
  }
  return client;
}
