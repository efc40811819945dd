/**
 * Deployment settings, read from CDK context (`cdk.json` or `cdk deploy -c dropwarden:key=value`).
 * Values given with `-c` arrive as strings, so every number is coerced and range-checked here,
 * before any construct sees it.
 */
import type { Node } from 'constructs';
import { DEFAULT_DRAIN_SECONDS, MAX_DRAIN_SECONDS, domainProblem } from '../../container-host/agent/routes/elb-config.ts';

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

/** The apps' routes: the load balancer and its names (DESIGN §7, §13). */
export interface RouteSettings {
  /** Routes are `<app_id>.<domain>`: `dropwarden:domain`, required. */
  domain: string;
  /** An ACM certificate for `*.<domain>`: HTTPS on 443, and port 80 redirects to it. */
  certificateArn?: string;
  /** A Route 53 hosted zone that gets the wildcard alias record `*.<domain>`. */
  hostedZoneId?: string;
  /** `internet-facing` (the default: public subnets) or `internal` (the hosts' private subnets). */
  internetFacing: boolean;
  /** The target groups' deregistration delay: how long a stopping instance drains. */
  drainSeconds: number;
}

export interface AlarmSettings {
  topicArn?: string;
  /** Load balancer 5xx answers (its own, e.g. 503 for an app with no healthy instance) in 5 minutes. */
  loadBalancer5xxCount: number;
  stagingOldestMessageSeconds: number;
  startOldestMessageSeconds: number;
  lambdaErrorRatePercent: number;
}

export interface DropwardenConfig {
  stackName: string;
  stager: StagerSettings;
  retention: RetentionSettings;
  hosts: HostSettings;
  routes: RouteSettings;
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
  if (typeof raw === 'string')
    return raw
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  throw new Error(`context ${CONTEXT_PREFIX}${key} must be a list of strings`);
}

function routes(get: Lookup): RouteSettings {
  const domain = text(get, 'domain')?.toLowerCase();
  if (!domain) {
    throw new Error(
      `context ${CONTEXT_PREFIX}domain is not set: apps are routed as <app>.<domain> through the stack's load balancer. Deploy with -c ${CONTEXT_PREFIX}domain=apps.example.com (a domain whose DNS you control), or set it in cdk.json`,
    );
  }
  const problem = domainProblem(domain);
  if (problem) throw new Error(`context ${CONTEXT_PREFIX}domain ${JSON.stringify(domain)} ${problem}`);
  const certificateArn = text(get, 'certificateArn');
  if (certificateArn && !/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]+$/.test(certificateArn)) {
    throw new Error(
      `context ${CONTEXT_PREFIX}certificateArn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID), got ${JSON.stringify(certificateArn)}`,
    );
  }
  const hostedZoneId = text(get, 'hostedZoneId');
  if (hostedZoneId && !/^Z[A-Z0-9]{1,31}$/.test(hostedZoneId)) {
    throw new Error(`context ${CONTEXT_PREFIX}hostedZoneId must be a Route 53 hosted zone id (Z…), got ${JSON.stringify(hostedZoneId)}`);
  }
  const scheme = text(get, 'loadBalancerScheme') ?? 'internet-facing';
  if (scheme !== 'internet-facing' && scheme !== 'internal') {
    throw new Error(`context ${CONTEXT_PREFIX}loadBalancerScheme must be "internet-facing" or "internal", got ${JSON.stringify(scheme)}`);
  }
  return {
    domain,
    certificateArn,
    hostedZoneId,
    internetFacing: scheme === 'internet-facing',
    drainSeconds: integer(get, 'routeDrainSeconds', DEFAULT_DRAIN_SECONDS, 0, MAX_DRAIN_SECONDS),
  };
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
    routes: routes(get),
    alarms: {
      topicArn: text(get, 'alarmTopicArn'),
      loadBalancer5xxCount: integer(get, 'loadBalancer5xxAlarmCount', 10, 1, 1_000_000),
      stagingOldestMessageSeconds: integer(get, 'stagingOldestMessageAlarmSeconds', 900, 60, 1_209_600),
      startOldestMessageSeconds: integer(get, 'startOldestMessageAlarmSeconds', 300, 60, 1_209_600),
      lambdaErrorRatePercent: integer(get, 'lambdaErrorRateAlarmPercent', 5, 1, 100),
    },
  };
}
