/**
 * Shapes the staging messages (§3.1) and the running messages (§3.3) share: the one place
 * they are defined, so a value one side accepts the other accepts too.
 */
import { z } from 'zod';

/**
 * An app id names S3 keys (`<droplets>/<app_id>/…`, `<cache>/<app_id>/…`), agent API paths and
 * the app's route (`<app_id>.localhost`, `<app_id>.<domain>`; DESIGN §7): so it is a DNS label, which is safe in all of
 * them (no `/`, `.`, `%`, upper case, or anything a path or host name would reinterpret).
 * Cloud Foundry v1's integer ids are kept: a whole number is its decimal digits.
 */
export const APP_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const APP_ID_RULE =
  'app_id must be a DNS label (1–63 lowercase letters a-z, digits and "-", starting and ending with a letter or digit, e.g. "node-hello") or a whole number ≥ 0';

export function isAppId(value: unknown): value is string | number {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0;
  return typeof value === 'string' && APP_ID_PATTERN.test(value);
}

/** As sent: a string stays a string, a number a number (results echo it unchanged). */
export const AppId = z.custom<string | number>(isAppId, { message: APP_ID_RULE });

/** Memory and disk sizes in MB: the bounds the agent can give a container (§3.3) and staging sizes a heap by. */
export const MIN_MB = 16;
export const MAX_MB = 1024 * 1024;
export const Megabytes = z.number().int().min(MIN_MB).max(MAX_MB);

/**
 * One `NAME=value` entry of an app's environment (staging and instances alike). A NUL cannot
 * cross exec (a C string ends there): refused here, not found later as a crash loop.
 */
export const EnvEntry = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'environment entries must be "NAME=value"')
  .refine((entry) => !entry.includes('\0'), 'environment entries cannot contain a NUL character (\\0)');
