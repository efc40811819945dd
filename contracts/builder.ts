/**
 * The stager and its builder (DESIGN §8): the privileged stager keeps the claims, the queues and
 * the buckets, and hands each staging's untrusted build to a builder that holds nothing but this
 * one request's authority. On AWS the builder is a second Lambda function whose own role allows
 * logs only; the stager invokes it with a `BuildJob` carrying temporary credentials that an
 * inline session policy limits to exactly this request's objects (`buildScope`), and gets a
 * `BuildReport` back. Locally the builder runs in the stager's process (its programs are in the
 * namespaces sandbox, which reaches no host address).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PHASES, StagingRequest, StagingResult } from './staging.ts';

/** Where a build leaves its droplet in the droplets bucket, for the stager to check and publish. */
export const DEFAULT_BUILDS_PREFIX = '.builds/';

export function buildDropletKey(prefix: string, requestId: string): string {
  return `${prefix}${createHash('sha256').update(requestId).digest('hex')}/droplet.tgz`;
}

/** Temporary credentials for exactly one request's objects. */
export const BuildCredentials = z.object({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1),
  expiration: z.string().optional(),
});
export type BuildCredentials = z.infer<typeof BuildCredentials>;

export const BuildJob = z.object({
  request_id: z.string().min(1),
  request: StagingRequest,
  /** Seconds left of the staging's deadline when the job was sent. */
  deadline_seconds: z.number().positive(),
  /** The droplets-bucket key the build uploads its droplet to (`buildDropletKey`). */
  droplet_key: z.string().min(1),
  credentials: BuildCredentials,
});
export type BuildJob = z.infer<typeof BuildJob>;

/** Why a build failed, as the stager renders it (functions/stager/errors.ts `Failure`). */
export const BuildFailure = z.union([
  z.object({ phase: z.enum([...PHASES, 'request', 'internal']), reason: z.string() }),
  z.object({ phase: z.literal('timeout'), seconds: z.number() }),
]);

export const BuildReport = z.discriminatedUnion('outcome', [
  /** `result.droplet` names the built droplet at `droplet_key` (size and hashes as the builder saw them). */
  z.object({ outcome: z.literal('built'), result: StagingResult }),
  /** A terminal failure: the stager answers with it. */
  z.object({ outcome: z.literal('failed'), result: StagingResult, failure: BuildFailure }),
  /** A transient one (throttling, a 5xx): the stager hands the message back to the queue. */
  z.object({ outcome: z.literal('retry'), message: z.string() }),
]);
export type BuildReport = z.infer<typeof BuildReport>;

/**
 * The objects one build may touch, and how: what the session policy of its credentials allows
 * (functions/stager/builder/scope.ts renders it), and nothing else.
 */
export interface BuildScope {
  /** The app's archive, when the request names an S3 object. */
  archive?: { bucket: string; key: string };
  droplet: { bucket: string; key: string };
  /** The app's build cache (read, written and, with purge_cache, deleted), when a cache bucket is set. */
  cache?: { bucket: string; key: string };
  /** The request's live log. */
  liveLog: { bucket: string; key: string };
}
