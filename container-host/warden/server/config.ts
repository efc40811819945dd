import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEFAULT_SOCKET_PATH } from '../protocol/constants.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/framing.ts';

export const DEFAULT_HEALTH_PORT = 7790;

const octalMode = z
  .union([z.string().regex(/^0?[0-7]{3}$/, 'an octal mode such as "0660"'), z.number().int().min(0).max(0o777)])
  .transform((m) => (typeof m === 'number' ? m : parseInt(m, 8)));

/**
 * wardend's JSON config (`--config FILE`). Keys this schema does not name are kept: they belong
 * to the service (the Linux backend reads its own settings from the same object).
 */
const configSchema = z.looseObject({
  socket: z.string().min(1).default(DEFAULT_SOCKET_PATH),
  socketMode: octalMode.default(0o660),
  socketGroup: z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  maxFrameBytes: z.number().int().positive().default(DEFAULT_MAX_FRAME_BYTES),
  /** SIGUSR2: how long connections may take to answer what they have read before being dropped. */
  drainTimeoutMs: z.number().int().min(0).default(10_000),
  /** `GET /healthz` over HTTP on host:port (port 0: any free port); null turns it off. */
  health: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(DEFAULT_HEALTH_PORT),
    })
    .nullable()
    .default({ host: '127.0.0.1', port: DEFAULT_HEALTH_PORT }),
});

export type WardendConfig = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Defaults filled in and checked; throws ConfigError saying which key is wrong. */
export function parseWardendConfig(raw: unknown, source = 'wardend config'): WardendConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ConfigError(`${source} is invalid: ${z.prettifyError(result.error).replace(/\n/g, '; ')}`);
  }
  return result.data;
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
