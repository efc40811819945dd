/**
 * What the agent and the local router say to each other (DESIGN §7): the router's admin API on
 * loopback, its bodies, and the headers the router adds. The agent's `LocalRouterRegistrar`
 * sends these; `local/router/` answers them.
 */
import { z } from 'zod';
import { APP_ID_PATTERN } from './common.ts';

/** The header carrying a request's id: kept when the client sent one, else made up by the router. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The admin API's paths (under the admin address, e.g. `http://127.0.0.1:7792`). */
export const ROUTER_ADMIN = {
  healthz: '/v1/healthz',
  /** GET: every route, as the router holds it. */
  routes: '/v1/routes',
  /** PUT: one source's whole state (RouteSync); `complete` replaces what the source had. */
  source: (source: string) => `/v1/sources/${encodeURIComponent(source)}`,
  /** PUT: register a RouteTargetBody; DELETE `?drain=1|0`: deregister. Its headers come once the target is out of the rotation, its body (a DrainOutcome) once drained. */
  target: (source: string, appId: string, instanceId: string) =>
    `/v1/sources/${encodeURIComponent(source)}/targets/${encodeURIComponent(appId)}/${encodeURIComponent(instanceId)}`,
} as const;

export const RouteTargetBody = z.object({
  app_id: z.string().regex(APP_ID_PATTERN),
  instance_id: z.string().min(1).max(128),
  index: z.number().int().min(0),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});
export type RouteTargetBody = z.infer<typeof RouteTargetBody>;

/**
 * One source's (one agent's) whole state, sent on start and every few seconds, so a router that
 * restarted learns it again. `down`: apps this source runs with no instance in their route now
 * (crashed, restarting): their route answers 503, not 404. `complete: false` only adds (an agent
 * that has not yet adopted what an earlier one left); `true` replaces what the source had.
 */
export const RouteSync = z.object({
  targets: z.array(RouteTargetBody),
  down: z.array(z.string().regex(APP_ID_PATTERN)),
  complete: z.boolean(),
});
export type RouteSync = z.infer<typeof RouteSync>;

/** `http://{app}.localhost:8080` → the app's route. */
export const ROUTE_APP_PLACEHOLDER = '{app}';
export function routeFor(template: string, appId: string | number): string {
  return template.replace(ROUTE_APP_PLACEHOLDER, String(appId));
}
