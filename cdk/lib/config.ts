/**
 * Deployment settings, read from CDK context (`cdk.json` or `cdk deploy -c dropwarden:key=value`).
 * Values given with `-c` arrive as strings, so every number is coerced and range-checked here,
 * before any construct sees it.
 */
import type { Node } from 'constructs';

export interface StagerSettings {
  memoryMb: number;
  ephemeralStorageMb: number;
  timeoutSeconds: number;
  maxConcurrency: number;
  batchSize: number;
  maxReceiveCount: number;
  /** A directory built by the `resources/` scripts, shipped as a layer under /opt; none when unset. */
  runtimeLayerDir?: string;
  /** Queues, besides the stack's result queue, that a request's `reply_to` may name. */
  replyToQueueArns: string[];
}

export interface RetentionSettings {
  appsDays: number;
  dropletsDays: number;
  cacheDays: number;
  logsDays: number;
}

export interface HostSettings {
  instanceType: string;
  minHosts: number;
  maxHosts: number;
  natGateways: number;
  rootVolumeGb: number;
  appPortFrom: number;
  appPortTo: number;
}

export interface AlarmSettings {
  topicArn?: string;
  stagingOldestMessageSeconds: number;
  startOldestMessageSeconds: number;
  lambdaErrorRatePercent: number;
}

export interface DropwardenConfig {
  stackName: string;
  stager: StagerSettings;
  retention: RetentionSettings;
  hosts: HostSettings;
  alarms: AlarmSettings;
}

export const CONTEXT_PREFIX = 'dropwarden:';

type Lookup = (key: string) => unknown;

function integer(get: Lookup, key: string, fallback: number, min: number, max: number): number {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`context ${CONTEXT_PREFIX}${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

function text(get: Lookup, key: string): string | undefined {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new Error(`context ${CONTEXT_PREFIX}${key} must be a string`);
  return raw;
}

function list(get: Lookup, key: string): string[] {
  const raw = get(key);
  if (raw === undefined || raw === null || raw === '') return [];
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return raw;
  // `-c key=a,b` on the command line
  if (typeof raw === 'string') return raw.split(',').map((v) => v.trim()).filter(Boolean);
  throw new Error(`context ${CONTEXT_PREFIX}${key} must be a list of strings`);
}

export function readConfig(node: Node): DropwardenConfig {
  const get: Lookup = (key) => node.tryGetContext(CONTEXT_PREFIX + key);

  // Lambda's hard limit is 900 s; the queue's visibility timeout (6x) must stay within 12 h.
  const timeoutSeconds = integer(get, 'stagerTimeoutSeconds', 900, 60, 900);
  const appPortFrom = integer(get, 'appPortFrom', 61000, 1024, 65535);
  const minHosts = integer(get, 'minHosts', 1, 0, 100);

  return {
    stackName: text(get, 'stackName') ?? 'Dropwarden',
    stager: {
      // 3584 MB buys two vCPUs: pack compresses on both.
      memoryMb: integer(get, 'stagerMemoryMb', 3584, 512, 10240),
      ephemeralStorageMb: integer(get, 'stagerEphemeralStorageMb', 10240, 512, 10240),
      timeoutSeconds,
      // The event source refuses a maximum concurrency below 2.
      maxConcurrency: integer(get, 'stagerMaxConcurrency', 10, 2, 1000),
      batchSize: integer(get, 'stagerBatchSize', 1, 1, 10),
      maxReceiveCount: integer(get, 'stagingMaxReceiveCount', 5, 5, 1000),
      runtimeLayerDir: text(get, 'runtimeLayerDir'),
      replyToQueueArns: list(get, 'replyToQueueArns'),
    },
    retention: {
      appsDays: integer(get, 'appRetentionDays', 30, 1, 3650),
      // Droplets move to Infrequent Access at 30 days; expiry must come after that.
      dropletsDays: integer(get, 'dropletRetentionDays', 365, 31, 3650),
      cacheDays: integer(get, 'cacheRetentionDays', 14, 1, 3650),
      logsDays: integer(get, 'logRetentionDays', 90, 1, 3650),
    },
    hosts: {
      instanceType: text(get, 'hostInstanceType') ?? 't3.large',
      minHosts,
      maxHosts: integer(get, 'maxHosts', Math.max(minHosts, 2), Math.max(minHosts, 1), 100),
      natGateways: integer(get, 'natGateways', 1, 1, 3),
      rootVolumeGb: integer(get, 'hostRootVolumeGb', 50, 30, 16384),
      appPortFrom,
      appPortTo: integer(get, 'appPortTo', 65000, appPortFrom, 65535),
    },
    alarms: {
      topicArn: text(get, 'alarmTopicArn'),
      stagingOldestMessageSeconds: integer(get, 'stagingOldestMessageAlarmSeconds', 900, 60, 1_209_600),
      startOldestMessageSeconds: integer(get, 'startOldestMessageAlarmSeconds', 300, 60, 1_209_600),
      lambdaErrorRatePercent: integer(get, 'lambdaErrorRateAlarmPercent', 5, 1, 100),
    },
  };
}
