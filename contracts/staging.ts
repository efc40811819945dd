/**
 * The staging messages (DESIGN.md §3.1, §3.2): the one place their shape is defined.
 * Unknown extra fields are kept (loose objects) and ignored, as upstream services may add some.
 */
import { z } from 'zod';
import { AppId, EnvEntry, Megabytes } from './common.ts';

const uri = (what: string) =>
  z
    .string()
    .min(1)
    .refine((v) => /^(s3:\/\/[^/]+\/.+|https?:\/\/.+)$/.test(v), {
      message: `${what} must be an s3://bucket/key or an https:// URL`,
    });

const named = z.looseObject({ name: z.string().min(1) });

export const StagingProperties = z.looseObject({
  framework: z.string().min(1).optional(),
  framework_info: named.optional(),
  runtime: z.string().min(1).optional(),
  runtime_info: named.optional(),
  resources: z
    .looseObject({
      memory: Megabytes.optional(),
      disk: Megabytes.optional(),
      fds: z.number().int().positive().optional(),
    })
    .optional(),
  environment: z.array(EnvEntry).optional(),
  services: z.array(z.unknown()).optional(),
  meta: z.looseObject({ command: z.string().min(1).optional() }).optional(),
  app_root: z.string().min(1).optional(),
  /** Drop the app's build cache before staging (plugins issue). */
  purge_cache: z.boolean().optional(),
});

export const StagingRequest = z.looseObject({
  request_id: z.string().min(1).max(256).optional(),
  /** A DNS label or a whole number (contracts/common.ts): it names S3 keys and, later, routes. */
  app_id: AppId,
  download_uri: uri('download_uri'),
  upload_uri: uri('upload_uri').optional(),
  reply_to: z.url({ protocol: /^https?$/ }).optional(),
  properties: StagingProperties.default({}),
});
export type StagingRequest = z.infer<typeof StagingRequest>;
export type StagingProperties = z.infer<typeof StagingProperties>;

export const DropletRef = z.looseObject({
  uri: z.string(),
  sha256: z.string(),
  sha1: z.string(),
  size: z.number().int(),
});
export type DropletRef = z.infer<typeof DropletRef>;

export const StagingInfo = z.looseObject({
  framework: z.string(),
  runtime: z.string().optional(),
  start_command: z.string(),
  detected: z.boolean(),
});
export type StagingInfo = z.infer<typeof StagingInfo>;

export const PHASES = ['download', 'unpack', 'stage', 'pack', 'upload'] as const;
export type Phase = (typeof PHASES)[number];

/** DESIGN §3.2: exactly one per request; `droplet` and `staging_info` on success, `error` on failure. */
export const StagingResult = z.looseObject({
  request_id: z.string(),
  /** As the request sent it; null when the body could not be read. */
  app_id: z.union([z.string(), z.number()]).nullable(),
  task_id: z.string(),
  task_log: z.string(),
  error: z.string().optional(),
  droplet: DropletRef.optional(),
  staging_info: StagingInfo.optional(),
  /** Each phase's wall time. download and unpack overlap (entries unpack as they arrive), so they may add up to more than the task. */
  timings_ms: z.partialRecord(z.enum(PHASES), z.number()),
});
export type StagingResult = z.infer<typeof StagingResult>;

/** The v1 prefix every failure text starts with (DESIGN §3.2). */
export const FAILURE_PREFIX = 'Staging task failed:\n ';

/** One line per problem, naming the field: what a user needs to fix the request. */
export function describeSchemaError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`).join('; ');
}
