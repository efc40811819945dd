/**
 * The agent's settings (README "Environment"): the stack's queues and region, wardend's socket,
 * the host's capacity and the instance policy. Everything not named by a variable is a tuning
 * knob with a default, overridable by tests.
 */
import { mkdirSync, readFileSync, statfsSync } from 'node:fs';
import { hostname, networkInterfaces, totalmem } from 'node:os';
import { HOST_STATE_DIR, SETTING } from '../../contracts/settings.ts';
import { type Places, PlacesSettingError, parsePlaces } from '../../lib/net/places.ts';
import { type UrlPolicy, urlPolicyFromEnv } from '../../lib/net/public-http.ts';
import { DEFAULT_SOCKET_PATH } from '../warden/protocol/constants.ts';

const MIB = 1024 * 1024;

export interface AgentTuning {
  /** First restart after a crash waits this long, doubling up to `restartBackoffMaxMs`. */
  restartBackoffFirstMs: number;
  restartBackoffMaxMs: number;
  /**
   * wardend destroys a container no connection has referenced for this long. While the agent
   * runs it always holds a connection naming each of its containers, so this only counts while
   * no agent runs: it must outlast any agent restart or upgrade (instances keep serving and are
   * adopted), yet end eventually on a host whose agent never comes back. Also below 2^31 ms,
   * the longest timer Node (wardend) can arm.
   */
  graceTimeS: number;
  /**
   * SQS long-poll wait. Stopping the agent waits for a receive under way (see poller.ts), so
   * this bounds how long a stop takes; a message that arrives ends the wait at once anyway.
   */
  pollWaitSeconds: number;
  /** How often free capacity is reported even when it did not change. */
  reportIntervalMs: number;
  /** Lines of the logs sent with a CRASHED state. */
  logsTailLines: number;
}

export interface AgentConfig {
  region: string;
  /** The embedded emulator's endpoint; absent on AWS. */
  endpoint?: string;
  startQueueUrl: string;
  eventsQueueUrl: string;
  wardenSocket: string;
  /** Droplet cache and the agent's own files. */
  agentDir: string;
  /** Where the HTTP API listens; null: no API. Port 0 picks a free one. */
  api: { host: string; port: number } | null;
  /** The host in instance URLs and the one health checks connect to. */
  advertiseHost: string;
  memoryMb: number;
  diskMb: number;
  healthCheckTimeoutS: number;
  maxRestarts: number;
  /** Set on ECS: the cluster whose container instance carries this host's capacity. */
  cluster?: string;
  /** Names this agent in InstanceStates. */
  agentId: string;
  /** Where a droplet_uri may point (DROPWARDEN_DROPLETS_FROM): the droplets bucket and public https:// by default. */
  dropletsFrom: Places;
  /** What an https:// droplet_uri may reach: public addresses only, unless a test says otherwise. */
  urls: UrlPolicy;
  tuning: AgentTuning;
}

export const DEFAULT_TUNING: AgentTuning = {
  restartBackoffFirstMs: 1000,
  restartBackoffMaxMs: 30_000,
  graceTimeS: 7 * 24 * 3600,
  pollWaitSeconds: 5,
  reportIntervalMs: 60_000,
  logsTailLines: 20,
};

export const DEFAULT_AGENT_DIR = `${HOST_STATE_DIR}/agent`;
export const DEFAULT_API = '127.0.0.1:7791';

/** A setting that cannot be used; the message names the variable and what it expects. */
export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: () => number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback();
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min) {
    throw new AgentConfigError(`${name}=${JSON.stringify(raw)} is not a whole number ≥ ${min}`);
  }
  return Number(raw);
}

export function parseApiAddress(raw: string): { host: string; port: number } | null {
  if (raw === 'off') return null;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new AgentConfigError(`${SETTING.agentApi}=${JSON.stringify(raw)} is not HOST:PORT (e.g. ${DEFAULT_API}) or "off"`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/**
 * The IPv4 of the interface holding the default route (/proc/net/route), else the first
 * external one: wardend's own veths are external interfaces too, and may come first.
 */
export function detectAdvertiseHost(): string {
  const interfaces = networkInterfaces();
  const ipv4Of = (name: string) => interfaces[name]?.find((a) => a.family === 'IPv4' && !a.internal)?.address;
  try {
    for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const [iface, destination] = line.split('\t');
      if (destination === '00000000') {
        const address = ipv4Of(iface);
        if (address) return address;
      }
    }
  } catch {
    // not Linux: fall through
  }
  for (const name of Object.keys(interfaces)) {
    const address = ipv4Of(name);
    if (address) return address;
  }
  return '127.0.0.1';
}

/** Free space of the filesystem holding `dir`, in MB. */
function freeDiskMb(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const s = statfsSync(dir);
  return Math.floor((s.bavail * s.bsize) / MIB);
}

function requireUrl(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new AgentConfigError(`${name} is not set: the agent needs the stack's queue URL (see \`dropwarden config\`)`);
  if (!/^https?:\/\//.test(value)) throw new AgentConfigError(`${name}=${JSON.stringify(value)} is not an SQS queue URL`);
  return value;
}

function places(env: NodeJS.ProcessEnv): Places {
  const bucket = env[SETTING.dropletsBucket];
  try {
    return parsePlaces('DROPWARDEN_DROPLETS_FROM', env.DROPWARDEN_DROPLETS_FROM, [bucket ? `s3://${bucket}` : '', 'https']);
  } catch (err) {
    if (err instanceof PlacesSettingError) throw new AgentConfigError(err.message);
    throw err;
  }
}

export function agentConfigFromEnv(env: NodeJS.ProcessEnv, tuning: Partial<AgentTuning> = {}): AgentConfig {
  const agentDir = env[SETTING.agentDir] || DEFAULT_AGENT_DIR;
  const memoryMb = wholeNumber(env, 'DROPWARDEN_AGENT_MEMORY_MB', () => Math.max(0, Math.floor(totalmem() / MIB) - 512), 0);
  const diskMb = wholeNumber(env, 'DROPWARDEN_AGENT_DISK_MB', () => Math.max(0, freeDiskMb(agentDir) - 1024), 0);
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL || undefined,
    startQueueUrl: requireUrl(env, SETTING.startQueueUrl),
    eventsQueueUrl: requireUrl(env, SETTING.eventsQueueUrl),
    wardenSocket: env[SETTING.wardenSocket] || DEFAULT_SOCKET_PATH,
    agentDir,
    api: parseApiAddress(env[SETTING.agentApi] || DEFAULT_API),
    advertiseHost: env[SETTING.agentAdvertiseHost] || detectAdvertiseHost(),
    memoryMb,
    diskMb,
    healthCheckTimeoutS: wholeNumber(env, 'DROPWARDEN_HEALTH_CHECK_TIMEOUT_SECONDS', () => 60),
    maxRestarts: wholeNumber(env, 'DROPWARDEN_MAX_RESTARTS', () => 5, 0),
    cluster: env[SETTING.cluster] || undefined,
    agentId: hostname(),
    dropletsFrom: places(env),
    urls: urlPolicyFromEnv(env),
    tuning: { ...DEFAULT_TUNING, ...tuning },
  };
}
