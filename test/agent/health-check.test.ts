/** Health checks against real sockets on this host. */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthCheckTimeoutError, probe, waitHealthy } from '../../container-host/agent/health-check.ts';
import { freePort } from '../support/processes.ts';

const servers: Array<{ close(): unknown }> = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

async function http(handler: (path: string) => number): Promise<number> {
  const server: Server = createHttpServer((req, res) => {
    res.statusCode = handler(req.url ?? '/');
    if (res.statusCode === 302) res.setHeader('location', '/elsewhere');
    res.end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('health checks', () => {
  it('port: passes once something accepts connections', async () => {
    const port = await freePort();
    expect(await probe({ type: 'port' }, '127.0.0.1', port)).toBe('ECONNREFUSED');
    let healthy = false;
    const waiting = waitHealthy({ type: 'port' }, { host: '127.0.0.1', port }, { timeoutS: 30, signal: new AbortController().signal }).then(() => (healthy = true));
    // Still refused, so waitHealthy cannot have passed yet: it keeps trying until the listener comes.
    expect(await probe({ type: 'port' }, '127.0.0.1', port)).toBe('ECONNREFUSED');
    expect(healthy).toBe(false);
    const server = createTcpServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    await waiting;
    expect(healthy).toBe(true);
  });

  it('http: 2xx and 3xx pass, anything else does not', async () => {
    const port = await http((path) => (path === '/ok' ? 204 : path === '/moved' ? 302 : 503));
    expect(await probe({ type: 'http', path: '/ok' }, '127.0.0.1', port)).toBeUndefined();
    expect(await probe({ type: 'http', path: '/moved' }, '127.0.0.1', port)).toBeUndefined();
    expect(await probe({ type: 'http', path: '/sick' }, '127.0.0.1', port)).toBe('GET /sick answered 503');
  });

  it('gives up after the timeout, saying so and why', async () => {
    const port = await http(() => 500);
    const err = await waitHealthy({ type: 'http', path: '/' }, { host: '127.0.0.1', port }, { timeoutS: 1, signal: new AbortController().signal }).catch((e) => e);
    expect(err).toBeInstanceOf(HealthCheckTimeoutError);
    expect(err.message).toBe('health check timed out after 1 s');
    expect(err.lastFailure).toBe('GET / answered 500');
  });

  it('none passes at once; an abort ends the wait', async () => {
    await waitHealthy({ type: 'none' }, { host: '127.0.0.1', port: 1 }, { timeoutS: 1, signal: new AbortController().signal });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('stopped')), 100);
    await expect(waitHealthy({ type: 'port' }, { host: '127.0.0.1', port: await freePort() }, { timeoutS: 30, signal: abort.signal })).rejects.toThrow('stopped');
  });
});
