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

export interface DropletRef {
  uri: string;
  sha256: string;
  sha1: string;
  size: number;
}

export interface StagingInfo {
  framework: string;
  runtime?: string;
  start_command: string;
  detected: boolean;
  [extra: string]: unknown;
}

export const PHASES = ['download', 'unpack', 'stage', 'pack', 'upload'] as const;
export type Phase = (typeof PHASES)[number];

export interface StagingResult {
  request_id: string;
  app_id: string | number | null;
  task_id: string;
  task_log: string;
  error?: string;
  droplet?: DropletRef;
  staging_info?: StagingInfo;
  /** Each phase's wall time. download and unpack overlap (entries unpack as they arrive), so they may add up to more than the task. */
  timings_ms: Partial<Record<Phase, number>>;
}

/** The v1 prefix every failure text starts with (DESIGN §3.2). */
export const FAILURE_PREFIX = 'Staging task failed:\n ';

/** One line per problem, naming the field: what a user needs to fix the request. */
export function describeSchemaError(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}
