/**
 * The local router (DESIGN §7) against real HTTP backends on loopback: routing by Host, 404 and
 * 503 answers, forwarded headers and request ids, round robin, WebSocket upgrades, streamed
 * responses, kept-alive backend connections, drains, the access log, the admin API, and the
 * router as the process `up` runs (ready line, restart on the same port, routes re-learnt).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROUTER_ADMIN } from '../../contracts/routes.ts';
import { routerConfigFromEnv, RouterConfigError } from '../../local/router/config.ts';
import { appFromHost, Router } from '../../local/router/router.ts';
import { LocalRouterRegistrar } from '../../container-host/agent/routes/local-router.ts';
import { freePort, until } from '../support/processes.ts';
import { routeGet } from '../support/routes.ts';

interface Backend {
  server: Server;
  port: number;
  seen: IncomingMessage[];
  connections: number;
  close(): Promise<void>;
}

/** A backend answering `name`, with /slow?ms=N, /stream and a WebSocket echo. */
async function backend(name: string): Promise<Backend> {
  const seen: IncomingMessage[] = [];
  const b = { seen, connections: 0 } as Backend;
  const server = createServer((req, res) => {
    seen.push(req);
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/slow') {
      setTimeout(() => res.end(`${name} slow\n`), Number(url.searchParams.get('ms')));
      return;
    }
    if (url.pathname === '/echo') {
      req.pipe(res);
      return;
    }
    if (url.pathname === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      setTimeout(() => res.end('second\n'), 400);
      return;
    }
    res.end(`${name}\n`);
  });
  server.on('connection', () => b.connections++);
  const upgraded = new Set<Socket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    seen.push(req);
    upgraded.add(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
    socket.on('data', (d) => socket.write(`${name}:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.server = server;
  b.port = (server.address() as { port: number }).port;
  b.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      server.close(() => r());
    });
  return b;
}

const lines: Array<Record<string, unknown>> = [];
let router: Router;
let route: (app: string) => string;
const backends: Backend[] = [];
const target = (app: string, instance: string, b: Backend, index = 0) => ({ app_id: app, instance_id: instance, index, host: '127.0.0.1', port: b.port });

beforeAll(async () => {
  router = new Router({
    ...routerConfigFromEnv({ DROPWARDEN_ROUTER_PORT: '0', DROPWARDEN_ROUTES_DRAIN_SECONDS: '5' }),
    warmupMs: 0,
    write: (l) => lines.push(JSON.parse(l)),
  });
  await router.start();
  route = (app) => `http://${app}.localhost:${router.port}`;
  backends.push(await backend('a'), await backend('b'));
});
afterAll(async () => {
  await router.close();
  await Promise.all(backends.map((b) => b.close()));
});

describe('the router', () => {
  it('answers an unknown app 404 naming it, and a host that is no route 404 saying what a route looks like', async () => {
    const res = await routeGet(route('nobody'));
    expect(res.status).toBe(404);
    expect(res.body).toContain('no app "nobody" here');
    const bad = await routeGet(`http://example.com:${router.port}/`);
    expect(bad.status).toBe(404);
    expect(bad.body).toContain('routes look like http://<app>.localhost:');
    expect((await routeGet(`http://a_b.localhost:${router.port}/`)).body).toContain('"a_b" is not an app id');
  });

  it('reads the app from Host case-insensitively, with or without a port; numbers are app ids too', () => {
    expect(appFromHost('Node-Hello.LOCALHOST:8080')).toEqual({ appId: 'node-hello', valid: true });
    expect(appFromHost('42.localhost')).toEqual({ appId: '42', valid: true });
    expect(appFromHost('localhost:8080')).toBeUndefined();
    expect(appFromHost('a.b.localhost')).toEqual({ appId: 'a.b', valid: false });
    const longest = `a${'-'.repeat(61)}z`;
    expect(appFromHost(`${longest}.localhost:1`)).toEqual({ appId: longest, valid: true });
    expect(appFromHost(`${longest}z.localhost`)?.valid).toBe(false);
  });

  it('routes by Host, adds X-Forwarded-* and a request id (keeping one given), and logs one line per request', async () => {
    router.table.register('t', target('42', 'i42', backends[0]));
    const before = backends[0].seen.length;
    const res = await routeGet(route('42'), { path: '/hi?x=1' });
    expect(res).toMatchObject({ status: 200, body: 'a\n' });
    const seen = backends[0].seen[before];
    expect(seen.url).toBe('/hi?x=1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(`42.localhost:${router.port}`);
    expect(seen.headers.host).toBe(`42.localhost:${router.port}`);
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(seen.headers['x-request-id']);
    const given = await routeGet(route('42'), { headers: { 'x-request-id': 'req-123' } });
    expect(given.headers['x-request-id']).toBe('req-123');
    expect(backends[0].seen.at(-1)!.headers['x-request-id']).toBe('req-123');
    const entry = await until('the access log line', () => lines.find((l) => l.request_id === 'req-123'));
    expect(entry).toMatchObject({ level: 'INFO', message: 'request', app: '42', instance: 'i42', index: 0, method: 'GET', path: '/', status: 200 });
    expect(entry.duration_ms).toEqual(expect.any(Number));
    await router.table.deregister('t', '42', 'i42', { drain: false, timeoutMs: 0 });
  });

  it("spreads requests over the app's instances in turn, over kept-alive connections", async () => {
    router.table.register('t', target('rr', 'ia', backends[0], 0));
    router.table.register('t', target('rr', 'ib', backends[1], 1));
    const connectionsBefore = backends[0].connections + backends[1].connections;
    const bodies = [];
    for (let i = 0; i < 10; i++) bodies.push((await routeGet(route('rr'))).body);
    expect(bodies.filter((b) => b === 'a\n')).toHaveLength(5);
    expect(bodies.filter((b) => b === 'b\n')).toHaveLength(5);
    expect(bodies.slice(0, 2).sort()).toEqual(['a\n', 'b\n']);
    // Sequential requests reuse one connection per backend.
    expect(backends[0].connections + backends[1].connections - connectionsBefore).toBeLessThanOrEqual(2);
  });

  it('answers 503 with Retry-After, at once, for an app whose instances crashed out of its route', async () => {
    router.table.register('t', target('crashy', 'c0', backends[0]));
    await router.table.deregister('t', 'crashy', 'c0', { drain: false, timeoutMs: 0 });
    const started = Date.now();
    const res = await routeGet(route('crashy'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toContain('app "crashy" has no running instance');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('tries another instance when one refuses the connection (it just died), and says 503 when none is left', async () => {
    const dead = await freePort();
    router.table.register('t', { app_id: 'half', instance_id: 'dead', index: 0, host: '127.0.0.1', port: dead });
    router.table.register('t', target('half', 'alive', backends[1], 1));
    for (let i = 0; i < 4; i++) expect((await routeGet(route('half'))).body).toBe('b\n');
    router.table.register('t', { app_id: 'gone', instance_id: 'dead', index: 0, host: '127.0.0.1', port: dead });
    const res = await routeGet(route('gone'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
  });

  it('passes a request body through (and does not retry a request that has one)', async () => {
    router.table.register('t', target('poster', 'p0', backends[0]));
    const body = 'x'.repeat(200_000);
    const res = await routeGet(route('poster'), { path: '/echo', method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    expect(res).toMatchObject({ status: 200, body });
    const dead = await freePort();
    router.table.register('t', { app_id: 'poster', instance_id: 'p-dead', index: 1, host: '127.0.0.1', port: dead });
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await routeGet(route('poster'), { path: '/echo', method: 'POST', body: 'y' })).status);
    // The dead one answers 502 (the body may have been sent: not retried); the live one 200.
    expect([...statuses].sort()).toEqual([200, 502]);
  });

  it('passes a streamed response through as it comes', async () => {
    router.table.register('t', target('streamer', 's0', backends[0]));
    const u = new URL(route('streamer'));
    const firstChunkAt = await new Promise<{ first: number; end: number; body: string }>((resolve, reject) => {
      const started = Date.now();
      let first = 0;
      let body = '';
      request({ host: '127.0.0.1', port: Number(u.port), path: '/stream', headers: { host: u.host } }, (res) => {
        res.on('data', (c: Buffer) => {
          if (!first) first = Date.now() - started;
          body += c.toString();
        });
        res.on('end', () => resolve({ first, end: Date.now() - started, body }));
      })
        .on('error', reject)
        .end();
    });
    expect(firstChunkAt.body).toBe('first\nsecond\n');
    expect(firstChunkAt.first).toBeLessThan(300);
    expect(firstChunkAt.end).toBeGreaterThanOrEqual(380);
  });

  it('passes a WebSocket upgrade through both ways, and refuses one to an unknown app with 404', async () => {
    router.table.register('t', target('ws', 'w0', backends[1]));
    const u = new URL(route('ws'));
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: Number(u.port),
        path: '/socket',
        headers: { host: u.host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('upgrade', (res, socket) => {
        expect(res.statusCode).toBe(101);
        socket.once('data', (d) => {
          resolve(d.toString());
          socket.destroy();
        });
        socket.write('ping');
      });
      req.on('error', reject);
      req.end();
    });
    expect(echoed).toBe('b:ping');
    expect(backends[1].seen.at(-1)!.headers['x-forwarded-for']).toBe('127.0.0.1');
    const refused = await routeGet(route('nobody-ws'), { headers: { connection: 'Upgrade', upgrade: 'websocket' }, keepAlive: false });
    expect(refused.status).toBe(404);
  });

  it('drains: a deregistered instance gets no new request, and the deregister resolves once its request in flight finished', async () => {
    router.table.register('t', target('drainy', 'd0', backends[0], 0));
    const slow = routeGet(route('drainy'), { path: '/slow?ms=800' });
    await until('the slow request to reach the backend', () => backends[0].seen.some((r) => r.url === '/slow?ms=800') || undefined);
    router.table.register('t', target('drainy', 'd1', backends[1], 1));
    const started = Date.now();
    const drained = router.table.deregister('t', 'drainy', 'd0', { drain: true, timeoutMs: 5000 });
    for (let i = 0; i < 4; i++) expect((await routeGet(route('drainy'))).body).toBe('b\n');
    expect(await drained).toMatchObject({ found: true, left: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect((await slow).body).toBe('a slow\n');
  });

  it('gives up a drain after its timeout, saying how many requests were left', async () => {
    router.table.register('t', target('stuck', 'x0', backends[0]));
    const slow = routeGet(route('stuck'), { path: '/slow?ms=1500' });
    await until('the slow request', () => backends[0].seen.some((r) => r.url === '/slow?ms=1500') || undefined);
    const started = Date.now();
    expect(await router.table.deregister('t', 'stuck', 'x0', { drain: true, timeoutMs: 200 })).toMatchObject({ found: true, left: 1 });
    expect(Date.now() - started).toBeLessThan(1000);
    await slow;
  });
});

describe("the router's admin API and the agent's registrar", () => {
  let registrar: LocalRouterRegistrar | undefined;
  afterEach(() => registrar?.close());

  it('registers, deregisters with a drain, and forgets an app that was stopped (404), not one that crashed (503)', async () => {
    registrar = new LocalRouterRegistrar({ admin: router.adminAddress, source: 'agent-1', log: { debug() {}, info() {}, warn() {}, error() {} } });
    const t = { appId: 'via-api', instanceId: 'v0', index: 0, host: '127.0.0.1', port: backends[0].port };
    await registrar.register(t);
    expect((await routeGet(route('via-api'))).body).toBe('a\n');
    const routes = (await (await fetch(`http://${router.adminAddress}${ROUTER_ADMIN.routes}`)).json()) as { apps: Record<string, { targets: unknown[] }> };
    expect(routes.apps['via-api'].targets).toEqual([expect.objectContaining({ instance_id: 'v0', port: backends[0].port, source: 'agent-1' })]);
    await registrar.deregister(t, { drain: false });
    expect((await routeGet(route('via-api'))).status).toBe(503);
    await registrar.register({ ...t, instanceId: 'v1' });
    await registrar.deregister({ ...t, instanceId: 'v0' }, { drain: true });
    await registrar.deregister({ ...t, instanceId: 'v1' }, { drain: true });
    expect((await routeGet(route('via-api'))).status).toBe(404);
  });

  it('says a draining target is withdrawn at once, while its request in flight is still under way', async () => {
    registrar = new LocalRouterRegistrar({ admin: router.adminAddress, source: 'agent-3', log: { debug() {}, info() {}, warn() {}, error() {} } });
    const t = { appId: 'withdrawn', instanceId: 'w0', index: 0, host: '127.0.0.1', port: backends[0].port };
    await registrar.register(t);
    const slow = routeGet(route('withdrawn'), { path: '/slow?ms=1000' });
    await until('the slow request to reach the backend', () => backends[0].seen.some((r) => r.url === '/slow?ms=1000') || undefined);
    const started = Date.now();
    let withdrawnAfter: number | undefined;
    let calls = 0;
    await registrar.deregister(t, {
      drain: true,
      onWithdrawn: () => {
        calls++;
        withdrawnAfter = Date.now() - started;
      },
    });
    const drainedAfter = Date.now() - started;
    expect(calls).toBe(1);
    expect(withdrawnAfter).toBeLessThan(500);
    expect(drainedAfter).toBeGreaterThanOrEqual(700);
    expect((await slow).body).toBe('a slow\n');
  });

  it('refuses a malformed registration with 400 naming the problem', async () => {
    const res = await fetch(`http://${router.adminAddress}${ROUTER_ADMIN.target('s', 'app', 'i')}`, {
      method: 'PUT',
      body: JSON.stringify({ app_id: 'app', instance_id: 'i', index: 0, host: 'h', port: 0 }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain('port');
  });

  it('re-sends its state: partial syncs only add; once reconciled, what it no longer has leaves the route', async () => {
    const stale = { app_id: 'stale', instance_id: 's0', index: 0, host: '127.0.0.1', port: backends[0].port };
    router.table.register('agent-2', stale);
    registrar = new LocalRouterRegistrar({ admin: router.adminAddress, source: 'agent-2', resyncMs: 100, log: { debug() {}, info() {}, warn() {}, error() {} } });
    await new Promise((r) => setTimeout(r, 300));
    expect((await routeGet(route('stale'))).status).toBe(200);
    await registrar.reconcile([{ appId: 'kept', instanceId: 'k0', index: 0, host: '127.0.0.1', port: backends[1].port }]);
    expect((await routeGet(route('stale'))).status).toBe(404);
    expect((await routeGet(route('kept'))).body).toBe('b\n');
  });
});

describe('the router settings', () => {
  it('default to 8080 (or the next free port) on loopback with a 10 s drain, and refuse what is not a port or a duration', () => {
    expect(routerConfigFromEnv({})).toMatchObject({
      port: 8080,
      searchPort: true,
      hosts: ['127.0.0.1', '::1'],
      drainTimeoutMs: 10_000,
      admin: { host: '127.0.0.1', port: 0 },
    });
    expect(() => routerConfigFromEnv({ DROPWARDEN_ROUTER_PORT: 'http' })).toThrow(RouterConfigError);
    expect(() => routerConfigFromEnv({ DROPWARDEN_ROUTES_DRAIN_SECONDS: '600' })).toThrow(/DROPWARDEN_ROUTES_DRAIN_SECONDS/);
    expect(() => routerConfigFromEnv({ DROPWARDEN_ROUTER_ADMIN: 'nope' })).toThrow(/HOST:PORT/);
  });

  it('take the next free port when the asked one is taken', async () => {
    const taken = await freePort();
    const blocker = createServer().listen(taken, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const r2 = new Router({ ...routerConfigFromEnv({ DROPWARDEN_ROUTER_PORT: String(taken), DROPWARDEN_ROUTER_HOST: '127.0.0.1' }), write: () => {} });
    try {
      await r2.start();
      expect(r2.port).not.toBe(taken);
      expect(r2.port).toBeGreaterThan(taken);
    } finally {
      await r2.close();
      blocker.close();
    }
  });
});

describe('the router process', () => {
  const RUN = new URL('../../local/router/run-router.ts', import.meta.url).pathname;
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  async function start(
    env: Record<string, string>,
    args: string[] = [],
  ): Promise<{ child: ChildProcess; ready: { port: number; admin: string; routes: string }; out: string[] }> {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', RUN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const out: string[] = [];
    const ready = await new Promise<{ port: number; admin: string; routes: string }>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        out.push(l);
        if (l.includes('"ready"')) resolve(JSON.parse(l));
      });
      child.once('exit', (code) => reject(new Error(`router exited ${code}`)));
    });
    return { child, ready, out };
  }

  it('prints its ready line, and once restarted on the same port learns the routes again from the registrar', async () => {
    const adminPort = await freePort();
    const env = { DROPWARDEN_ROUTER_PORT: '0', DROPWARDEN_ROUTER_HOST: '127.0.0.1', DROPWARDEN_ROUTER_ADMIN: `127.0.0.1:${adminPort}` };
    const first = await start(env);
    expect(first.ready.routes).toBe(`http://{app}.localhost:${first.ready.port}`);
    const reg = new LocalRouterRegistrar({ admin: first.ready.admin, source: 'p', resyncMs: 200, log: { debug() {}, info() {}, warn() {}, error() {} } });
    try {
      await reg.register({ appId: 'survivor', instanceId: 's', index: 0, host: '127.0.0.1', port: backends[0].port });
      const url = `http://survivor.localhost:${first.ready.port}`;
      expect((await routeGet(url)).body).toBe('a\n');
      await until('an access log line on stdout', () => first.out.find((l) => l.includes('"message":"request"') && l.includes('"survivor"')));
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      const again = await start({ ...env, DROPWARDEN_ROUTER_PORT: String(first.ready.port) }, ['--exact-port']);
      expect(again.ready.port).toBe(first.ready.port);
      // Until the registrar's next sync, the route is "still learning" (503), never 404.
      const early = await routeGet(url, { keepAlive: false });
      expect([200, 503]).toContain(early.status);
      await until('the route again after a router restart', async () => ((await routeGet(url, { keepAlive: false })).status === 200 ? true : undefined), 5000);
    } finally {
      reg.close();
    }
  });
});
