/**
 * The run contract's environment (DESIGN §4): what an instance's process sees besides what
 * the droplet's own startup script exports. Classic warden's spawn has no environment field,
 * so the agent writes these as `export` lines at the top of the script it spawns.
 */
import { createHash } from 'node:crypto';
import type { StartRequest } from '../../contracts/instances.ts';

const MIB = 1024 * 1024;

/** Open files per instance (VCAP_APPLICATION.limits.fds and the job's nofile rlimit). */
export const INSTANCE_FDS = 1024;

export interface InstancePlacement {
  instanceId: string;
  index: number;
  /** The droplet directory inside the container. */
  home: string;
  /** Where the app listens inside the container (also the host port: net_in maps them 1:1). */
  port: number;
  /** `host:port` as the outside reaches it. */
  uri: string;
  startedAt: Date;
}

/** v1 service bindings → VCAP_SERVICES: arrays keyed by the service's label. */
export function vcapServices(services: unknown[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const service of services) {
    const s = (service ?? {}) as { label?: unknown; vendor?: unknown; version?: unknown };
    const label =
      typeof s.label === 'string' && s.label
        ? s.label
        : typeof s.vendor === 'string' && s.vendor
          ? typeof s.version === 'string' && s.version
            ? `${s.vendor}-${s.version}`
            : s.vendor
          : 'user-provided';
    (out[label] ??= []).push(service);
  }
  return out;
}

/** The user's "K=V" entries; the last of a name wins. */
export function userEnvironment(entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/**
 * The whole environment of an instance. The contract's own names win over the user's, so an
 * app cannot be told to listen where nothing is routed.
 */
export function runEnvironment(req: StartRequest, at: InstancePlacement): Record<string, string> {
  const name = req.name ?? req.app_id;
  const started = at.startedAt;
  const version = createHash('sha1').update(req.droplet_uri).digest('hex');
  const vcapApplication = {
    instance_id: at.instanceId,
    instance_index: at.index,
    application_id: req.app_id,
    name,
    application_name: name,
    uris: [at.uri],
    application_uris: [at.uri],
    version,
    application_version: version,
    host: '0.0.0.0',
    port: at.port,
    start: started.toISOString(),
    started_at: started.toISOString(),
    started_at_timestamp: Math.floor(started.getTime() / 1000),
    state_timestamp: Math.floor(started.getTime() / 1000),
    limits: { mem: req.memory * MIB, disk: req.disk * MIB, fds: INSTANCE_FDS },
  };
  return {
    ...userEnvironment(req.environment),
    HOME: at.home,
    PORT: String(at.port),
    VCAP_APP_PORT: String(at.port),
    VCAP_APP_HOST: '0.0.0.0',
    MEMORY_LIMIT: `${req.memory}m`,
    VCAP_APPLICATION: JSON.stringify(vcapApplication),
    VCAP_SERVICES: JSON.stringify(vcapServices(req.services)),
  };
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `export NAME='value'` lines; a name that is not a plain identifier is refused (it would run as shell). */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`"${k}" is not a valid environment variable name`);
      return `export ${k}=${shellQuote(v)}`;
    })
    .join('\n');
}
