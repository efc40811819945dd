/**
 * The agent's local HTTP API (container-host/agent/README.md) as the CLI reads it: apps and
 * their instances, run logs. Where: $DROPWARDEN_AGENT_API, else the running `up` stack's
 * agent, else the agent's default address.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { DEFAULT_API } from '../container-host/agent/config.ts';
import { InstanceState } from '../contracts/instances.ts';
import { SETTING } from '../contracts/settings.ts';
import { readRunningStack, stateDir } from '../local/state.ts';
import { UsageError } from './errors.ts';

export const AgentInstance = InstanceState.extend({
  handle: z.string().nullish(),
  started_at: z.string().nullish(),
});
export type AgentInstance = z.infer<typeof AgentInstance>;

export const AgentApp = z.looseObject({
  app_id: z.string(),
  name: z.string().nullish(),
  droplet_uri: z.string().nullish(),
  memory: z.number().nullish(),
  disk: z.number().nullish(),
  instances: z.array(AgentInstance),
});
export type AgentApp = z.infer<typeof AgentApp>;

const AppList = z.looseObject({ apps: z.array(AgentApp) });

export class AgentApiError extends Error {
  override name = 'AgentApiError';
}

export function agentApiAddress(env: NodeJS.ProcessEnv): string {
  const fromEnv = env[SETTING.agentApi];
  if (fromEnv === 'off') throw new UsageError('DROPWARDEN_AGENT_API is "off": this command reads the agent\'s API; set it to the agent\'s host:port');
  return fromEnv || readRunningStack(stateDir(env))?.agent_api || DEFAULT_API;
}

export interface LogsQuery {
  stream?: 'stdout' | 'stderr' | 'all';
  lines?: number;
  follow?: boolean;
  index?: number;
}

export class AgentApi {
  readonly address: string;

  constructor(address: string) {
    this.address = address;
  }

  private async get(path: string): Promise<Response> {
    const url = `http://${this.address}${path}`;
    try {
      return await fetch(url);
    } catch (err) {
      const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new AgentApiError(
        `cannot reach the agent's API at ${this.address} (${why}): is \`dropwarden up\` running (or the agent, with DROPWARDEN_AGENT_API naming it)?`,
      );
    }
  }

  private async json<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const res = await this.get(path);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new AgentApiError(`the agent answered ${res.status} to GET ${path}: ${(await res.text()).trim()}`);
    const parsed = schema.safeParse(await res.json());
    if (!parsed.success) throw new AgentApiError(`the agent's answer to GET ${path} is not what this CLI understands: ${parsed.error.message}`);
    return parsed.data;
  }

  async apps(): Promise<AgentApp[]> {
    return (await this.json('/v1/apps', AppList))?.apps ?? [];
  }

  /** The app, or undefined when the agent runs none of that id. */
  app(appId: string): Promise<AgentApp | undefined> {
    return this.json(`/v1/apps/${encodeURIComponent(appId)}`, AgentApp);
  }

  /**
   * The run log as a byte stream (open while `follow`), or the agent's reason when it has none
   * to give (no such app, no instance with that index).
   */
  async logs(appId: string, query: LogsQuery = {}): Promise<Readable | { missing: string }> {
    const params = new URLSearchParams();
    if (query.stream) params.set('stream', query.stream);
    if (query.lines !== undefined) params.set('lines', String(query.lines));
    if (query.follow) params.set('follow', '1');
    if (query.index !== undefined) params.set('index', String(query.index));
    const path = `/v1/apps/${encodeURIComponent(appId)}/logs?${params}`;
    const res = await this.get(path);
    if (res.status === 404) {
      const body = (await res.json().catch(() => ({}))) as { error?: unknown };
      return { missing: typeof body.error === 'string' ? body.error : `no app ${appId} runs on this host` };
    }
    if (!res.ok || !res.body) throw new AgentApiError(`the agent answered ${res.status} to GET ${path}: ${(await res.text()).trim()}`);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  }
}
