/**
 * Keys in the droplets bucket besides droplets (DESIGN §3.1, §13): the stager writes its claims
 * and live logs under these prefixes, the CDK stack expires them, upload_uri may not point into
 * them, and `dropwarden stage` tails the live log. The stager's defaults; its environment may
 * move them (functions/stager/config.ts).
 */
import { createHash } from 'node:crypto';

export const DEFAULT_CLAIMS_PREFIX = '.requests/';
export const DEFAULT_LIVE_LOG_PREFIX = '.logs/';

/** The live log of one request: its id hashed, so any id makes a plain key. */
export function liveLogKey(prefix: string, requestId: string): string {
  return `${prefix}${createHash('sha256').update(requestId).digest('hex')}.log`;
}
