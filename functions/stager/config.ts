/** The stager's settings: the stack it talks to and the limits it enforces, from the environment. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CLAIMS_PREFIX, DEFAULT_LIVE_LOG_PREFIX } from '../../contracts/bucket-keys.ts';
import { SETTING } from '../../contracts/settings.ts';
import { type Places, parsePlaces } from '../../lib/net/places.ts';
import { type UrlPolicy, urlPolicyFromEnv } from '../../lib/net/public-http.ts';
import type { UnpackLimits } from '../../lib/archive/limits.ts';
import type { PluginSettings } from '../../plugins/api/types.ts';
import { type SandboxMode, sandboxMode } from './sandbox.ts';
import { type StackConfig, stackConfigFromEnv } from '../../lib/stack-config.ts';

export type { UnpackLimits };

export interface StagerConfig {
  stack: StackConfig;
  /** Each task gets a fresh directory under this one, removed when it ends. */
  workRoot: string;
  /** One deadline for the whole task; keep it below the function timeout. */
  deadlineSeconds: number;
  unpack: UnpackLimits;
  gzipLevel: number;
  /**
   * lib-storage part size. lib-storage holds each part in memory (the parts in flight and the
   * one being filled): the upload is the stager's peak, so parts stay small (S3's minimum is 5 MiB).
   */
  partSizeBytes: number;
  uploadConcurrency: number;
  /** Where request claims (idempotency markers) are kept, in the droplets bucket. */
  claimsPrefix: string;
  /** A request's claim lapses this long after its owner stops renewing it (crashed). */
  claimLeaseSeconds: number;
  /** Where live task logs are published, in the droplets bucket. */
  liveLogPrefix: string;
  /** The per-app build cache (cache.ts): not saved when its files add up to more. */
  cacheMaxBytes: number;
  /** Where download_uri may point (DROPWARDEN_DOWNLOAD_FROM): the apps bucket and public https:// by default. */
  downloadFrom: Places;
  /** Where upload_uri may point (DROPWARDEN_UPLOAD_TO): the droplets bucket and public https:// by default. */
  uploadTo: Places;
  /** What http(s) URLs may reach: public addresses only, unless a test says otherwise (DROPWARDEN_TEST_ALLOW_PRIVATE_URLS). */
  urls: UrlPolicy;
  /** What the plugins are told, and the environment their programs start from. */
  plugins: PluginEnvironment;
}

/** What the stage phase hands the plugins (DESIGN §8, §9): parsed here, once, like every other setting. */
export interface PluginEnvironment {
  /** The stager's `DROPWARDEN_*` settings: the only ones a plugin reads (`ctx.settings`). */
  settings: PluginSettings;
  /** How those programs are confined (DROPWARDEN_SANDBOX). */
  sandbox: SandboxMode;
  /** The limits `ctx.unpackArchive` applies (a .war inside the app). */
  unpackLimits: UnpackLimits;
}

export function pluginEnvironmentFromEnv(env: NodeJS.ProcessEnv): PluginEnvironment {
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && name.startsWith('DROPWARDEN_')) settings[name] = value;
  return { settings, sandbox: sandboxMode(env[SETTING.sandbox]), unpackLimits: unpackLimitsFromEnv(env) };
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return n;
}

/** The unpack limits alone: the unpack phase's, and a plugin's that unpacks an archive inside the app (a .war). */
export function unpackLimitsFromEnv(env: NodeJS.ProcessEnv): UnpackLimits {
  return {
    maxTotalBytes: num(env, 'DROPWARDEN_UNPACK_MAX_BYTES', 2 * GiB),
    maxEntries: num(env, 'DROPWARDEN_UNPACK_MAX_ENTRIES', 100_000),
    maxRatio: num(env, 'DROPWARDEN_UNPACK_MAX_RATIO', 200),
    ratioMinBytes: num(env, 'DROPWARDEN_UNPACK_RATIO_MIN_BYTES', 1 * MiB),
    maxPathBytes: 4096,
    maxNameBytes: 255,
  };
}

/**
 * Defaults fit a Lambda function with 10 GiB of /tmp: the zip, the unpacked app and the
 * droplet together stay well under it at the 2 GiB unpack limit.
 */
export function stagerConfigFromEnv(env: NodeJS.ProcessEnv): StagerConfig {
  const stack = stackConfigFromEnv(env);
  return {
    stack,
    workRoot: env[SETTING.workDir] || join(tmpdir(), 'dropwarden-staging'),
    deadlineSeconds: num(env, SETTING.stagingDeadlineSeconds, 840),
    unpack: unpackLimitsFromEnv(env),
    gzipLevel: num(env, 'DROPWARDEN_GZIP_LEVEL', 6),
    partSizeBytes: num(env, 'DROPWARDEN_UPLOAD_PART_BYTES', 5 * MiB),
    uploadConcurrency: num(env, 'DROPWARDEN_UPLOAD_CONCURRENCY', 2),
    claimsPrefix: env.DROPWARDEN_CLAIMS_PREFIX || DEFAULT_CLAIMS_PREFIX,
    claimLeaseSeconds: num(env, 'DROPWARDEN_CLAIM_LEASE_SECONDS', 30),
    liveLogPrefix: env.DROPWARDEN_LIVE_LOG_PREFIX || DEFAULT_LIVE_LOG_PREFIX,
    cacheMaxBytes: num(env, 'DROPWARDEN_CACHE_MAX_BYTES', 512 * MiB),
    downloadFrom: parsePlaces('DROPWARDEN_DOWNLOAD_FROM', env.DROPWARDEN_DOWNLOAD_FROM, [`s3://${stack.buckets.apps}`, 'https']),
    uploadTo: parsePlaces('DROPWARDEN_UPLOAD_TO', env.DROPWARDEN_UPLOAD_TO, [`s3://${stack.buckets.droplets}`, 'https']),
    urls: urlPolicyFromEnv(env),
    plugins: pluginEnvironmentFromEnv(env),
  };
}
