/**
 * The names and endpoints of one dropwarden stack (DESIGN §6 `config`): what every process
 * needs to reach the queues and buckets, whether the stack is the embedded one or on AWS.
 */
import { SETTING } from '../contracts/settings.ts';

export interface StackConfig {
  region: string;
  /** Set for the embedded emulator; absent on AWS. */
  endpoint?: string;
  queues: { staging: string; staging_dlq: string; results: string; start: string; events: string };
  buckets: { apps: string; droplets: string; cache: string };
  /** The apps' route template: `http://{app}.localhost:8080` locally, `https://{app}.<domain>` on AWS (DESIGN §7); absent where apps have no routes. */
  routes?: string;
}

/** Which variable holds each queue and bucket. */
const ENV = {
  staging: SETTING.stagingQueueUrl,
  staging_dlq: SETTING.stagingDlqUrl,
  results: SETTING.resultsQueueUrl,
  start: SETTING.startQueueUrl,
  events: SETTING.eventsQueueUrl,
  apps: SETTING.appsBucket,
  droplets: SETTING.dropletsBucket,
  cache: SETTING.cacheBucket,
} as const;

export class StackConfigError extends Error {
  override name = 'StackConfigError';
}

/** Read from the environment (the Lambda function's, or a child process of `up`). */
export function stackConfigFromEnv(env: NodeJS.ProcessEnv): StackConfig {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new StackConfigError(`${name} is not set: it names part of the stack this process talks to`);
    return v;
  };
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL || undefined,
    queues: {
      staging: env[ENV.staging] ?? '',
      staging_dlq: env[ENV.staging_dlq] ?? '',
      results: need(ENV.results),
      start: env[ENV.start] ?? '',
      events: env[ENV.events] ?? '',
    },
    buckets: {
      apps: env[ENV.apps] ?? '',
      droplets: need(ENV.droplets),
      cache: env[ENV.cache] ?? '',
    },
    ...(env[SETTING.routes] ? { routes: env[SETTING.routes] } : {}),
  };
}

export function hasStackEnv(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env[ENV.results] && env[ENV.droplets]);
}

export function stackConfigToEnv(config: StackConfig): Record<string, string> {
  const env: Record<string, string> = { AWS_REGION: config.region };
  if (config.endpoint) env.AWS_ENDPOINT_URL = config.endpoint;
  for (const q of ['staging', 'staging_dlq', 'results', 'start', 'events'] as const) env[ENV[q]] = config.queues[q];
  for (const b of ['apps', 'droplets', 'cache'] as const) env[ENV[b]] = config.buckets[b];
  if (config.routes) env[SETTING.routes] = config.routes;
  return env;
}
