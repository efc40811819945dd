/**
 * The environment variables the stack hands to the stager function and the host container:
 * the runtime reads its bucket and queue names from these (DESIGN §6: `DROPWARDEN_*`; the same
 * names as lib/stack-config.ts and functions/stager/config.ts read).
 */
export const ENV = {
  appsBucket: 'DROPWARDEN_APPS_BUCKET',
  dropletsBucket: 'DROPWARDEN_DROPLETS_BUCKET',
  cacheBucket: 'DROPWARDEN_CACHE_BUCKET',
  stagingQueueUrl: 'DROPWARDEN_STAGING_QUEUE_URL',
  resultsQueueUrl: 'DROPWARDEN_RESULTS_QUEUE_URL',
  startQueueUrl: 'DROPWARDEN_START_QUEUE_URL',
  eventsQueueUrl: 'DROPWARDEN_EVENTS_QUEUE_URL',
  stagingDeadlineSeconds: 'DROPWARDEN_STAGING_DEADLINE_SECONDS',
  runtimesDir: 'DROPWARDEN_RUNTIMES_DIR',
  npmCli: 'DROPWARDEN_NPM_CLI',
  cluster: 'DROPWARDEN_CLUSTER',
  depotDir: 'DROPWARDEN_DEPOT',
} as const;

/** Powertools reads these; `service` also becomes a dimension of every EMF metric. */
export const POWERTOOLS = {
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;

export const METRICS_NAMESPACE = 'dropwarden';
export const STAGER_SERVICE = 'stager';
export const HOST_SERVICE = 'agent';

/** Where wardend keeps its depot on the host; bind-mounted at the same path in the container. */
export const DEPOT_DIR = '/var/lib/dropwarden';
