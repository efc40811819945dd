/**
 * The running messages (DESIGN.md §3.3): StartRequest and StopRequest on the start
 * queue, InstanceState on the events queue. The one place their shape is defined. Unknown extra
 * fields are kept (loose objects) and ignored.
 */
import { z } from 'zod';
import { AppId, EnvEntry, Megabytes } from './common.ts';

/** The staging request's app id (contracts/common.ts), as a string. */
const appId = AppId.transform(String);

const dropletUri = z
  .string()
  .min(1)
  .refine((v) => /^(s3:\/\/[^/]+\/.+|https?:\/\/.+)$/.test(v), {
    message: 'droplet_uri must be an s3://bucket/key or an https:// URL',
  });

export const HealthCheck = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('port') }),
  z.looseObject({ type: z.literal('http'), path: z.string().startsWith('/', 'health_check.path must start with /').default('/') }),
  /** No check: RUNNING as soon as the process started (workers that listen on nothing). */
  z.looseObject({ type: z.literal('none') }),
]);
export type HealthCheck = z.infer<typeof HealthCheck>;

export const StartRequest = z.looseObject({
  kind: z.literal('start'),
  app_id: appId,
  droplet_uri: dropletUri,
  /** How many instances of this app (indices 0..instances-1) should run: declarative, so a duplicate starts none twice. */
  instances: z.number().int().min(1).max(100).default(1),
  /** MB. */
  memory: Megabytes.default(256),
  /** MB. */
  disk: Megabytes.default(1024),
  environment: z.array(EnvEntry).default([]),
  services: z.array(z.unknown()).default([]),
  health_check: HealthCheck.default({ type: 'port' }),
  /** Extension: also send this request's InstanceStates to this SQS queue URL (as StagingRequest.reply_to). */
  reply_to: z.url({ protocol: /^https?$/ }).optional(),
  /** Extension: the app's name in VCAP_APPLICATION (default: app_id). */
  name: z.string().min(1).max(256).optional(),
  /** Extension: seconds the health check may take (default: the agent's). */
  health_check_timeout: z.number().int().min(1).max(3600).optional(),
});
export type StartRequest = z.infer<typeof StartRequest>;

export const StopRequest = z.looseObject({
  kind: z.literal('stop'),
  app_id: appId,
  /** Absent: every instance of the app. */
  instance_id: z.string().min(1).max(256).optional(),
});
export type StopRequest = z.infer<typeof StopRequest>;

/** What arrives on the start queue. */
export const StartQueueMessage = z.discriminatedUnion('kind', [StartRequest, StopRequest]);
export type StartQueueMessage = z.infer<typeof StartQueueMessage>;

export const INSTANCE_STATES = ['STARTING', 'RUNNING', 'CRASHED', 'STOPPED'] as const;
export type InstanceStateName = (typeof INSTANCE_STATES)[number];

export const InstanceState = z.looseObject({
  app_id: z.string(),
  instance_id: z.string(),
  index: z.number().int(),
  state: z.enum(INSTANCE_STATES),
  host: z.string(),
  port: z.number().int().nullable(),
  url: z.string().nullable(),
  /** Why it CRASHED (exit status, "out of memory", health check timeout) or why it STOPPED; else null. */
  reason: z.string().nullable(),
  /** Extensions. */
  droplet_uri: z.string().optional(),
  /** How many times this instance was restarted after crashing. */
  restarts: z.number().int().optional(),
  /** Last lines of the instance's stdout/stderr, with a CRASHED state. */
  logs_tail: z.string().optional(),
  /** The agent that runs it: its host's hostname (AgentConfig.agentId). */
  agent: z.string().optional(),
  timestamp: z.string(),
});
export type InstanceState = z.infer<typeof InstanceState>;

/**
 * A StartRequest refused as malformed makes no instance. Its `reply_to`, when that is a usable
 * queue URL, still gets one InstanceState, as a rejected staging request gets its result:
 * CRASHED, `instance_id` "", this `index`, and `reason` "Invalid start request: <what is wrong>".
 */
export const REJECTED_INDEX = -1;
export const INVALID_START_REQUEST = 'Invalid start request';

/** The reply_to and app_id of a body that is not a valid StartRequest, where they are usable. */
export const RejectedStartAddress = z.object({
  kind: z.literal('start'),
  reply_to: StartRequest.shape.reply_to.unwrap(),
  app_id: z.union([z.string(), z.number()]).transform(String).catch(''),
});
