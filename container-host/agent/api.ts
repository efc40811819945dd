/**
 * The agent's local HTTP API (README "HTTP API"), for the CLI and scripts on the host:
 * healthz, the apps and their instances, and run logs (tailed, or followed as they grow).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InstanceState } from '../../contracts/instances.ts';
import type { InstanceContainer, LogFile, LogFollower } from './container.ts';
import type { AgentLogger } from './log.ts';

export interface ApiInstance {
  index: number;
  latest: InstanceState;
  startedAt?: string;
  container?: InstanceContainer;
}

export interface ApiApp {
  app_id: string;
  name: string;
  droplet_uri: string;
  memory: number;
  disk: number;
  instances: ApiInstance[];
}

export interface ApiSource {
  apps(): ApiApp[];
  app(appId: string): ApiApp | undefined;
}

export interface RunningApi {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}

const MAX_LINES = 100_000;

function appJson(app: ApiApp) {
  return {
    app_id: app.app_id,
    name: app.name,
    droplet_uri: app.droplet_uri,
    memory: app.memory,
    disk: app.disk,
    instances: app.instances.map((i) => ({ ...i.latest, handle: i.container?.handle ?? null, started_at: i.startedAt ?? null })),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}

class BadRequest extends Error {}

interface LogsQuery {
  files: LogFile[];
  lines: number;
  follow: boolean;
  index?: number;
}

function logsQuery(params: URLSearchParams): LogsQuery {
  const stream = params.get('stream') ?? 'all';
  if (!['stdout', 'stderr', 'all'].includes(stream)) throw new BadRequest(`stream must be stdout, stderr or all, not "${stream}"`);
  const lines = params.get('lines') ?? '100';
  if (!/^\d+$/.test(lines) || Number(lines) > MAX_LINES) throw new BadRequest(`lines must be a whole number up to ${MAX_LINES}, not "${lines}"`);
  const index = params.get('index');
  if (index !== null && !/^\d+$/.test(index)) throw new BadRequest(`index must be an instance index (0, 1, …), not "${index}"`);
  return {
    files: stream === 'all' ? ['stdout.log', 'stderr.log'] : [`${stream}.log` as LogFile],
    lines: Number(lines),
    follow: ['1', 'true'].includes(params.get('follow') ?? ''),
    index: index === null ? undefined : Number(index),
  };
}

/** Prefixes every complete line with `[index] `; keeps a partial last line for the next chunk. */
function linePrefixer(prefix: string): (chunk: string, end?: boolean) => string {
  let partial = '';
  return (chunk, end = false) => {
    const text = partial + chunk;
    const cut = end ? text.length : text.lastIndexOf('\n') + 1;
    partial = text.slice(cut);
    return text
      .slice(0, cut)
      .split(/(?<=\n)/)
      .filter(Boolean)
      .map((line) => prefix + line)
      .join('');
  };
}

async function serveLogs(req: IncomingMessage, res: ServerResponse, app: ApiApp, q: LogsQuery, log: AgentLogger): Promise<void> {
  if (q.index !== undefined && !app.instances.some((i) => i.index === q.index)) {
    sendJson(res, 404, { error: `app ${app.app_id} has no instance with index ${q.index} on this host` });
    return;
  }
  const chosen = app.instances.filter((i) => q.index === undefined || i.index === q.index);
  const prefixed = new Set(chosen.map((i) => i.index)).size > 1;
  const withContainer = chosen.filter((i): i is ApiInstance & { container: InstanceContainer } => i.container !== undefined);
  const prefix = (i: ApiInstance) => (prefixed ? linePrefixer(`[${i.index}] `) : (chunk: string) => chunk);
  if (!q.follow) {
    const texts = await Promise.all(withContainer.map((i) => i.container.readLogs(q.files, q.lines).catch(() => '')));
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(texts.map((text, n) => prefix(withContainer[n])(text, true)).join(''));
    return;
  }
  const followers: LogFollower[] = [];
  let closed = false;
  req.socket.once('close', () => {
    closed = true;
    for (const f of followers) void f.cancel();
  });
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
  res.flushHeaders();
  await Promise.all(
    withContainer.map(async (i) => {
      let follower: LogFollower;
      try {
        follower = await i.container.followLogs(q.files, q.lines);
      } catch (err) {
        log.warn("Could not follow an instance's logs", { app_id: app.app_id, index: i.index, error: (err as Error).message });
        return;
      }
      followers.push(follower);
      if (closed) return follower.cancel();
      const add = prefix(i);
      try {
        for await (const chunk of follower.output) res.write(add(chunk.toString()));
      } catch {
        // the container went away (crash, stop) or the client left: this instance's part ends
      }
    }),
  );
  res.end();
}

async function route(req: IncomingMessage, res: ServerResponse, source: ApiSource, log: AgentLogger): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (req.method !== 'GET') {
    sendJson(res, 405, { error: 'only GET is served' });
    return;
  }
  if (parts[0] !== 'v1') {
    sendJson(res, 404, { error: `no such path: ${url.pathname}` });
    return;
  }
  if (parts.length === 2 && parts[1] === 'healthz') return sendJson(res, 200, { ok: true });
  if (parts.length === 2 && parts[1] === 'apps') return sendJson(res, 200, { apps: source.apps().map(appJson) });
  if (parts[1] === 'apps' && (parts.length === 3 || (parts.length === 4 && parts[3] === 'logs'))) {
    const app = source.app(parts[2]);
    if (!app) return sendJson(res, 404, { error: `no app ${parts[2]} runs on this host` });
    if (parts.length === 3) return sendJson(res, 200, appJson(app));
    return serveLogs(req, res, app, logsQuery(url.searchParams), log);
  }
  sendJson(res, 404, { error: `no such path: ${url.pathname}` });
}

export async function startApi(source: ApiSource, opts: { host: string; port: number; log: AgentLogger }): Promise<RunningApi> {
  const server: Server = createServer((req, res) => {
    route(req, res, source, opts.log).catch((err: Error) => {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof BadRequest) sendJson(res, 400, { error: err.message });
      else {
        opts.log.error('The agent API failed a request', { path: req.url, error: err.message });
        sendJson(res, 500, { error: err.message });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`the agent API cannot listen on ${opts.host}:${opts.port} (${err.code ?? err.message}); set DROPWARDEN_AGENT_API to a free host:port, or "off"`)),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    address: `${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
