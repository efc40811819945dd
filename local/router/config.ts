/**
 * The local router's settings (DESIGN §7, §12), parsed once at its composition root
 * (`run-router.ts`) from the environment it is given.
 */
import { SETTING } from '../../contracts/settings.ts';
import { DEFAULT_WARMUP_MS, MAX_DRAIN_MS, type RouterOptions } from './router.ts';

export const DEFAULT_ROUTER_PORT = 8080;
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 10;

export class RouterConfigError extends Error {
  override name = 'RouterConfigError';
}

export type RouterConfig = Omit<RouterOptions, 'write'>;

function parseHostPort(name: string, raw: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RouterConfigError(`${name}=${JSON.stringify(raw)} is not HOST:PORT (e.g. 127.0.0.1:0)`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/**
 * DROPWARDEN_ROUTER_PORT (default 8080; taken if free, else the next free one; 0: any),
 * DROPWARDEN_ROUTER_HOST (default loopback, 127.0.0.1 and ::1, which `*.localhost` resolves to),
 * DROPWARDEN_ROUTER_ADMIN (the admin API, default 127.0.0.1 and a free port),
 * DROPWARDEN_ROUTES_DRAIN_SECONDS (default 10 here, at most 60; the same setting is the load balancer's delay on AWS). `exactPort`: a restarted router
 * takes the port it had, or fails.
 */
export function routerConfigFromEnv(env: NodeJS.ProcessEnv, opts: { exactPort?: boolean } = {}): RouterConfig {
  const rawPort = env[SETTING.routerPort];
  const port = rawPort === undefined || rawPort === '' ? DEFAULT_ROUTER_PORT : Number(rawPort);
  if (!/^\d{1,5}$/.test(String(rawPort ?? port).trim()) || port > 65535) {
    throw new RouterConfigError(`${SETTING.routerPort}=${JSON.stringify(rawPort)} is not a port number (0–65535; 0: any free port)`);
  }
  const rawDrain = env[SETTING.routesDrainSeconds];
  const drain = rawDrain === undefined || rawDrain === '' ? DEFAULT_DRAIN_TIMEOUT_SECONDS : Number(rawDrain);
  if (!/^\d+(\.\d+)?$/.test(String(rawDrain ?? drain).trim()) || drain * 1000 > MAX_DRAIN_MS) {
    throw new RouterConfigError(`${SETTING.routesDrainSeconds}=${JSON.stringify(rawDrain)} is not a number of seconds from 0 to ${MAX_DRAIN_MS / 1000}`);
  }
  const host = env[SETTING.routerHost];
  return {
    hosts: host ? [host] : ['127.0.0.1', '::1'],
    port,
    searchPort: !opts.exactPort,
    admin: parseHostPort(SETTING.routerAdmin, env[SETTING.routerAdmin] || '127.0.0.1:0'),
    drainTimeoutMs: drain * 1000,
    warmupMs: DEFAULT_WARMUP_MS,
  };
}
