/**
 * How an app's load balancer resources are named (DESIGN §7): every host's agent computes the
 * same names from the listener and the app id, so any of them finds what another created.
 */
import { createHash } from 'node:crypto';
import { TARGET_GROUP_NAME_PREFIX } from '../../../contracts/elb-routes.ts';

/** ELB's limit on target group names. */
export const TARGET_GROUP_NAME_MAX = 32;
const HASH_CHARS = 8;
/** What is left of the name for the app id: 32 − "dw-" − "-" − 8 hash characters. */
const APP_CHARS = TARGET_GROUP_NAME_MAX - TARGET_GROUP_NAME_PREFIX.length - 1 - HASH_CHARS;

/**
 * `dw-<app id, cut to 20>-<8 hex of sha256(listener, app id)>`: readable in the console, at most
 * 32 characters, and distinct per listener and per app even where two long app ids share their
 * first 20 characters (the hash covers the whole id).
 */
export function targetGroupName(listenerArn: string, appId: string): string {
  const hash = createHash('sha256').update(`${listenerArn}\n${appId}`).digest('hex').slice(0, HASH_CHARS);
  const app = appId
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, APP_CHARS)
    .replace(/-+$/, '');
  return `${TARGET_GROUP_NAME_PREFIX}${app}-${hash}`;
}

/** The host name an app's listener rule matches. */
export function routeHost(appId: string, domain: string): string {
  return `${appId}.${domain}`.toLowerCase();
}
