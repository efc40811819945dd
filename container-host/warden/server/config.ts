import { readFile } from 'node:fs/promises';
import { DEFAULT_SOCKET_PATH } from '../protocol/constants.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/framing.ts';
import { DEFAULT_IDLE_TIMEOUT_MS } from './server.ts';

export const DEFAULT_HEALTH_PORT = 7790;

/**
 * wardend's JSON config (`--config FILE`). Keys not named here are kept: they belong to the
 * service (the Linux backend reads its own settings from the same object).
 */
export interface WardendConfig {
  socket: string;
  socketMode: number;
  /** Group name or gid that owns the socket; absent: the daemon's group. */
  socketGroup?: string | number;
  maxFrameBytes: number;
  /** Request bytes all connections together may hold (partial frames and unanswered ones); default 4 × maxFrameBytes. */
  maxBufferedBytes: number;
  /** A connection holding no container is closed after this long without traffic; 0: never. */
  idleTimeoutMs: number;
  /** SIGUSR2: how long connections may take to answer what they have read before being dropped. */
  drainTimeoutMs: number;
  /** `GET /healthz` over HTTP on host:port (port 0: any free port); null turns it off. */
  health: { host: string; port: number } | null;
  [serviceKey: string]: unknown;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

// Checked by hand rather than with a schema library: wardend is long-lived and every library
// it loads stays in its RSS (zod alone is ~14 MB).
type Check = (value: unknown) => string | undefined;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const checks: Record<string, Check> = {
  socket: (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'a non-empty path'),
  socketMode: (v) => ((typeof v === 'string' && /^0?[0-7]{3}$/.test(v)) || (isInt(v) && v >= 0 && v <= 0o777) ? undefined : 'an octal mode such as "0660"'),
  socketGroup: (v) => ((typeof v === 'string' && v.length > 0) || (isInt(v) && v >= 0) ? undefined : 'a group name or gid'),
  maxFrameBytes: (v) => (isInt(v) && v > 0 ? undefined : 'a positive integer'),
  maxBufferedBytes: (v) => (isInt(v) && v > 0 ? undefined : 'a positive integer'),
  idleTimeoutMs: (v) => (isInt(v) && v >= 0 ? undefined : 'an integer ≥ 0 (0: never)'),
  drainTimeoutMs: (v) => (isInt(v) && v >= 0 ? undefined : 'an integer ≥ 0'),
  health: (v) => {
    if (v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) return 'null or {"host", "port"}';
    const { host, port } = v as { host?: unknown; port?: unknown };
    if (host !== undefined && typeof host !== 'string') return 'host must be a string';
    if (port !== undefined && !(isInt(port) && port >= 0 && port <= 65535)) return 'port must be an integer 0-65535';
    return undefined;
  },
};

/** Defaults filled in and checked; throws ConfigError saying which key is wrong. */
export function parseWardendConfig(raw: unknown, source = 'wardend config'): WardendConfig {
  const input = (raw ?? {}) as Record<string, unknown>;
  if (typeof input !== 'object' || Array.isArray(input)) throw new ConfigError(`${source} is invalid: expected a JSON object`);
  const problems = Object.entries(checks)
    .filter(([key]) => input[key] !== undefined)
    .map(([key, check]) => [key, check(input[key])] as const)
    .filter(([, why]) => why !== undefined)
    .map(([key, why]) => `${key}: expected ${why}`);
  const maxFrameBytes = (input.maxFrameBytes as number | undefined) ?? DEFAULT_MAX_FRAME_BYTES;
  const maxBufferedBytes = (input.maxBufferedBytes as number | undefined) ?? 4 * maxFrameBytes;
  if (!problems.length && maxBufferedBytes < maxFrameBytes) {
    problems.push(`maxBufferedBytes: expected at least maxFrameBytes (${maxFrameBytes}), or no request of that size could ever be read`);
  }
  if (problems.length) throw new ConfigError(`${source} is invalid: ${problems.join('; ')}`);
  const mode = input.socketMode ?? 0o660;
  const health = input.health as { host?: string; port?: number } | null | undefined;
  return {
    ...input,
    socket: (input.socket as string | undefined) ?? DEFAULT_SOCKET_PATH,
    socketMode: typeof mode === 'number' ? mode : parseInt(mode as string, 8),
    maxFrameBytes,
    maxBufferedBytes,
    idleTimeoutMs: (input.idleTimeoutMs as number | undefined) ?? DEFAULT_IDLE_TIMEOUT_MS,
    drainTimeoutMs: (input.drainTimeoutMs as number | undefined) ?? 10_000,
    health: health === null ? null : { host: health?.host ?? '127.0.0.1', port: health?.port ?? DEFAULT_HEALTH_PORT },
  };
}

export async function loadWardendConfig(file?: string, overrides: Partial<WardendConfig> = {}): Promise<WardendConfig> {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read wardend config ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`wardend config ${file} is not JSON: ${(err as Error).message}`);
    }
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return parseWardendConfig({ ...raw, ...defined }, file ?? 'wardend config');
}
