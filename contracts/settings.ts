/**
 * The names of the `DROPWARDEN_*` variables one process sets and another reads: the CDK stack
 * (DESIGN §13) and `dropwarden up` (DESIGN §12) set them for the stager, wardend and the agent;
 * the CLI reads some of the same (DESIGN §6). Only the names live here; each process parses its
 * own values. Add names, never rename: deployments set these.
 */
export const SETTING = {
  // The stack's queues and buckets (lib/stack-config.ts).
  stagingQueueUrl: 'DROPWARDEN_STAGING_QUEUE_URL',
  stagingDlqUrl: 'DROPWARDEN_STAGING_DLQ_URL',
  resultsQueueUrl: 'DROPWARDEN_RESULTS_QUEUE_URL',
  startQueueUrl: 'DROPWARDEN_START_QUEUE_URL',
  eventsQueueUrl: 'DROPWARDEN_EVENTS_QUEUE_URL',
  appsBucket: 'DROPWARDEN_APPS_BUCKET',
  dropletsBucket: 'DROPWARDEN_DROPLETS_BUCKET',
  cacheBucket: 'DROPWARDEN_CACHE_BUCKET',
  // The stager (functions/stager/config.ts, plugins/).
  stagingDeadlineSeconds: 'DROPWARDEN_STAGING_DEADLINE_SECONDS',
  workDir: 'DROPWARDEN_WORK_DIR',
  runtimesDir: 'DROPWARDEN_RUNTIMES_DIR',
  npmCli: 'DROPWARDEN_NPM_CLI',
  /**
   * How plugin programs run (DESIGN §8): `namespaces` (the default: the local sandbox) or
   * `env-only` (only the scrubbed environment: on Lambda, in the builder function).
   */
  sandbox: 'DROPWARDEN_SANDBOX',
  /**
   * On AWS (DESIGN §8): the builder Lambda function the stager invokes with each build, and the
   * role it assumes (with a session policy scoped to one request's objects) for the build's
   * credentials. Unset: the build runs in the stager's process.
   */
  builderFunction: 'DROPWARDEN_BUILDER_FUNCTION',
  builderDataRoleArn: 'DROPWARDEN_BUILDER_DATA_ROLE_ARN',
  // The agent (container-host/agent/config.ts) and the CLI commands that find it.
  cluster: 'DROPWARDEN_CLUSTER',
  wardenSocket: 'DROPWARDEN_WARDEN_SOCKET',
  agentDir: 'DROPWARDEN_AGENT_DIR',
  agentApi: 'DROPWARDEN_AGENT_API',
  agentAdvertiseHost: 'DROPWARDEN_AGENT_ADVERTISE_HOST',
  // Routes (DESIGN §7): the local router (local/router/config.ts), the agent that registers with
  // it (container-host/agent/routes/local-router.ts), and the CLI that prints routes.
  routerPort: 'DROPWARDEN_ROUTER_PORT',
  routerHost: 'DROPWARDEN_ROUTER_HOST',
  routerAdmin: 'DROPWARDEN_ROUTER_ADMIN',
  /** The route template, e.g. `http://{app}.localhost:8080` (`config --json` `routes`). */
  routes: 'DROPWARDEN_ROUTES',
  // Routes on AWS: the stack's load balancer, which the agent's ELB registrar manages
  // (container-host/agent/routes/elb-config.ts; DESIGN §7, §13).
  routesListenerArn: 'DROPWARDEN_ROUTES_LISTENER_ARN',
  routesVpcId: 'DROPWARDEN_ROUTES_VPC_ID',
  routesDomain: 'DROPWARDEN_ROUTES_DOMAIN',
  /**
   * How long a stopping instance's in-flight requests may take, for every route: the local
   * router's drain (default 10, at most 60) and the load balancer's deregistration delay
   * (default 30, at most 3600).
   */
  routesDrainSeconds: 'DROPWARDEN_ROUTES_DRAIN_SECONDS',
} as const;

/**
 * The host directory wardend and the agent keep their state under (their defaults: `depot/`,
 * `rootfs/`, `agent/`), which the CDK task definition bind-mounts at the same path (DESIGN §13).
 */
export const HOST_STATE_DIR = '/var/lib/dropwarden';
