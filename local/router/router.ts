/**
 * The local router (DESIGN §7, §12): one port for every app's route, `Host: <app>.localhost`,
 * proxied with http-proxy-3 over kept-alive connections to the app's RUNNING instances in turn;
 * and an admin API on loopback through which agents register and deregister instances.
 */
import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyServer } from 'http-proxy-3';
import { APP_ID_PATTERN } from '../../contracts/common.ts';
import { REQUEST_ID_HEADER, ROUTER_ADMIN, RouteSync, RouteTargetBody } from '../../contracts/routes.ts';
import { type Backend, RouteTable } from './table.ts';

export interface RouterOptions {
  /** Addresses the public port listens on (all on the same port). */
  hosts: string[];
  /** The public port; 0: any free one. */
  port: number;
  /** Taken when free, else the next free one (up to 20 further), else any. */
  searchPort: boolean;
  admin: { host: string; port: number };
  /** How long a deregister with drain waits for in-flight requests. */
  drainTimeoutMs: number;
  /** After a start, an unknown app is answered 503 (the agents have not re-sent their routes yet), not 404. */
  warmupMs: number;
  /** One JSON line per request, and the router's own lines. */
  write?: (line: string) => void;
}

export const DEFAULT_WARMUP_MS = 5000;
/** Longest drain anyone may ask for (the registrar's request waits this long at most). */
export const MAX_DRAIN_MS = 60_000;
const PORT_SEARCH = 20;
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

export class RouterStartError extends Error {
  override name = 'RouterStartError';
}

/** The app a Host header names: `<app>.localhost[:port]`, case-insensitive; undefined for any other host. */
export function appFromHost(host: string | undefined): { appId: string; valid: boolean } | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
  if (!name.endsWith('.localhost')) return undefined;
  const appId = name.slice(0, -'.localhost'.length);
  return { appId, valid: APP_ID_PATTERN.test(appId) };
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

function send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

export class Router {
  readonly table = new RouteTable();
  readonly #opts: RouterOptions;
  readonly #agent = new HttpAgent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
  readonly #proxy: ProxyServer;
  readonly #public: Server[] = [];
  #adminServer?: Server;
  /** Upgraded connections, which a server's closeAllConnections does not know. */
  readonly #upgraded = new Set<Socket>();
  #startedAt = 0;
  port = 0;
  adminPort = 0;

  constructor(opts: RouterOptions) {
    this.#opts = opts;
    this.#proxy = new ProxyServer({ agent: this.#agent, xfwd: true, ws: true, proxyTimeout: 0 });
    // Errors come to each call's own callback; this only keeps a stray one from throwing.
    this.#proxy.on('error', () => {});
  }

  #write(fields: Record<string, unknown>): void {
    (this.#opts.write ?? ((l) => process.stdout.write(`${l}\n`)))(JSON.stringify({ time: new Date().toISOString(), ...fields }));
  }

  get adminAddress(): string {
    return `${this.#opts.admin.host.includes(':') ? `[${this.#opts.admin.host}]` : this.#opts.admin.host}:${this.adminPort}`;
  }

  /** `http://{app}.localhost:<port>`: what `config --json` calls `routes`. */
  get routes(): string {
    return `http://{app}.localhost:${this.port}`;
  }

  async start(): Promise<void> {
    this.#startedAt = Date.now();
    this.#adminServer = createServer((req, res) => void this.#admin(req, res));
    try {
      this.adminPort = await listen(this.#adminServer, this.#opts.admin.port, this.#opts.admin.host);
    } catch (err) {
      throw new RouterStartError(`the router's admin API cannot listen on ${this.#opts.admin.host}:${this.#opts.admin.port}: ${(err as Error).message}`);
    }
    const first = this.#opts.port;
    const candidates =
      first === 0
        ? [0]
        : this.#opts.searchPort
          ? [...Array(PORT_SEARCH + 1).keys()]
              .map((i) => first + i)
              .filter((p) => p <= 65535)
              .concat(0)
          : [first];
    let lastError: Error | undefined;
    for (const candidate of candidates) {
      try {
        await this.#listenPublic(candidate);
        return;
      } catch (err) {
        lastError = err as Error;
        await this.#closePublic();
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
      }
    }
    await this.close();
    throw new RouterStartError(`the router cannot listen on port ${first} (${this.#opts.hosts.join(', ')}): ${lastError?.message}`);
  }

  async #listenPublic(port: number): Promise<void> {
    let chosen = port;
    for (const [i, host] of this.#opts.hosts.entries()) {
      const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#route(req, res));
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head));
      server.on('clientError', (_err, socket: Socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
        else socket.destroy();
      });
      try {
        chosen = await listen(server, chosen, host);
      } catch (err) {
        // ::1 where the host has no IPv6: 127.0.0.1 is enough.
        if (i > 0 && ['EADDRNOTAVAIL', 'EAFNOSUPPORT'].includes((err as NodeJS.ErrnoException).code ?? '')) continue;
        throw err;
      }
      this.#public.push(server);
    }
    this.port = chosen;
  }

  async #closePublic(): Promise<void> {
    await Promise.all(this.#public.splice(0).map((s) => new Promise((r) => s.close(r))));
  }

  async close(): Promise<void> {
    for (const s of this.#public) s.closeAllConnections();
    for (const socket of this.#upgraded) socket.destroy();
    await this.#closePublic();
    if (this.#adminServer) {
      this.#adminServer.closeAllConnections();
      await new Promise((r) => this.#adminServer!.close(r));
    }
    this.#agent.destroy();
  }

  #requestId(req: IncomingMessage): string {
    const given = req.headers[REQUEST_ID_HEADER];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    req.headers[REQUEST_ID_HEADER] = id;
    return id;
  }

  /** 404 or 503 for a request no instance can take; undefined when `pick` found one. */
  #refusal(
    app: ReturnType<typeof appFromHost>,
    host: string | undefined,
    pickKind: 'unknown' | 'down' | undefined,
  ): { status: number; text: string; headers?: Record<string, string> } {
    if (!app) return { status: 404, text: `dropwarden router: no app is named by the host "${host ?? ''}"; routes look like http://<app>.localhost:${this.port}/\n` };
    if (!app.valid) return { status: 404, text: `dropwarden router: "${app.appId}" is not an app id (a DNS label, DESIGN §3.1), so no app "${app.appId}" is here\n` };
    if (pickKind === 'down') {
      return { status: 503, text: `dropwarden router: app "${app.appId}" has no running instance right now; try again shortly\n`, headers: { 'retry-after': '1' } };
    }
    if (Date.now() - this.#startedAt < this.#opts.warmupMs) {
      return { status: 503, text: `dropwarden router: just started, still learning routes; app "${app.appId}" is not known yet\n`, headers: { 'retry-after': '1' } };
    }
    return { status: 404, text: `dropwarden router: no app "${app.appId}" here (push it first: npx dropwarden push PATH --app-id ${app.appId})\n` };
  }

  /** The one access-log line of a request (DESIGN §7). */
  #accessLog(
    r: { requestId: string; app: ReturnType<typeof appFromHost>; backend?: Backend; req: IncomingMessage; status: number; started: number },
    extra: Record<string, unknown>,
  ): void {
    this.#write({
      level: 'INFO',
      message: 'request',
      request_id: r.requestId,
      app: r.app?.appId ?? null,
      instance: r.backend?.instanceId ?? null,
      index: r.backend?.index ?? null,
      method: r.req.method,
      path: r.req.url,
      status: r.status,
      duration_ms: Math.round((performance.now() - r.started) * 1000) / 1000,
      ...extra,
    });
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const requestId = this.#requestId(req);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const app = appFromHost(req.headers.host);
    let backend: Backend | undefined;
    const tried = new Set<Backend>();
    res.once('close', () => {
      if (backend) this.table.release(backend);
      this.#accessLog({ requestId, app, backend, req, status: res.statusCode, started }, res.writableFinished ? {} : { aborted: true });
    });
    const attempt = (): void => {
      const picked = app?.valid ? this.table.pick(app.appId, tried) : undefined;
      if (picked?.kind !== 'ok') {
        // Every instance refused while this request was being tried: it went away (a crash).
        const kind = tried.size > 0 ? 'down' : picked?.kind;
        const r = this.#refusal(app, req.headers.host, kind);
        send(res, r.status, r.text, r.headers);
        return;
      }
      backend = picked.backend;
      tried.add(backend);
      this.table.acquire(backend);
      this.#proxy.web(req, res, { target: { host: backend.host, port: backend.port } }, (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const failed = backend!;
        if (!res.headersSent && RETRYABLE.has(code) && !hasBody(req) && tried.size < 3) {
          this.table.suspect(failed);
          this.table.release(failed);
          backend = undefined;
          attempt();
          return;
        }
        if (RETRYABLE.has(code)) this.table.suspect(failed);
        send(res, 502, `dropwarden router: instance ${failed.index} of app "${failed.appId}" failed to answer: ${code || (err as Error).message}\n`);
      });
    };
    attempt();
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const started = performance.now();
    const requestId = this.#requestId(req);
    const app = appFromHost(req.headers.host);
    const picked = app?.valid ? this.table.pick(app.appId) : undefined;
    let status = 101;
    const log = (backend?: Backend) => this.#accessLog({ requestId, app, backend, req, status, started }, { upgrade: req.headers.upgrade ?? null });
    socket.on('error', () => {});
    if (picked?.kind !== 'ok') {
      const r = this.#refusal(app, req.headers.host, picked?.kind);
      status = r.status;
      const headers = Object.entries({
        'content-type': 'text/plain; charset=utf-8',
        'content-length': String(Buffer.byteLength(r.text)),
        connection: 'close',
        ...r.headers,
      });
      socket.end(`HTTP/1.1 ${r.status} ${r.status === 404 ? 'Not Found' : 'Service Unavailable'}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${r.text}`);
      log();
      return;
    }
    const backend = picked.backend;
    this.table.acquire(backend);
    this.#upgraded.add(socket);
    socket.once('close', () => {
      this.#upgraded.delete(socket);
      this.table.release(backend);
      log(backend);
    });
    this.#proxy.ws(req, socket, head, { target: { host: backend.host, port: backend.port } }, (err) => {
      if (RETRYABLE.has((err as NodeJS.ErrnoException).code ?? '')) this.table.suspect(backend);
      status = 502;
      if (socket.writable) socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  async #admin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      const parts = url.pathname.split('/').map((p) => decodeURIComponent(p));
      if (req.method === 'GET' && url.pathname === ROUTER_ADMIN.healthz) return json(200, { ok: true, port: this.port, routes: this.routes });
      if (req.method === 'GET' && url.pathname === ROUTER_ADMIN.routes) return json(200, { routes: this.routes, apps: this.table.snapshot() });
      // /v1/sources/:source[/targets/:app/:instance]
      if (parts[1] === 'v1' && parts[2] === 'sources' && parts[3]) {
        const source = parts[3];
        if (parts.length === 4 && req.method === 'PUT') {
          const body = RouteSync.safeParse(await readJson(req));
          if (!body.success) return json(400, { error: `not a route sync: ${body.error.message}` });
          this.table.sync(source, body.data);
          return json(200, { ok: true });
        }
        if (parts.length === 7 && parts[4] === 'targets') {
          const [appId, instanceId] = [parts[5], parts[6]];
          if (req.method === 'PUT') {
            const body = RouteTargetBody.safeParse(await readJson(req));
            if (!body.success || body.data.app_id !== appId || body.data.instance_id !== instanceId) {
              return json(400, { error: `not a route target for ${appId}/${instanceId}: ${body.success ? 'the path and body disagree' : body.error.message}` });
            }
            this.table.register(source, body.data);
            this.#write({
              level: 'INFO',
              message: 'Registered',
              source,
              app: appId,
              instance: instanceId,
              index: body.data.index,
              target: `${body.data.host}:${body.data.port}`,
            });
            return json(200, { ok: true });
          }
          if (req.method === 'DELETE') {
            const drain = url.searchParams.get('drain') === '1';
            const timeoutMs = Math.min(MAX_DRAIN_MS, Number(url.searchParams.get('timeout_ms')) || this.#opts.drainTimeoutMs);
            // Out of the rotation before deregister's first await: the headers say so at once
            // (a replacement waits for them), the body once drained.
            const draining = this.table.deregister(source, appId, instanceId, { drain, timeoutMs });
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
            const outcome = await draining;
            this.#write({
              level: outcome.left ? 'WARN' : 'INFO',
              message: drain ? 'Deregistered and drained' : 'Deregistered',
              source,
              app: appId,
              instance: instanceId,
              ...outcome,
            });
            res.end(JSON.stringify(outcome));
            return;
          }
        }
      }
      json(404, { error: `no such admin call: ${req.method} ${url.pathname}` });
    } catch (err) {
      json(400, { error: (err as Error).message });
    }
  }
}
