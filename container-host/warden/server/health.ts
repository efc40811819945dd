import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WardenServer } from './server.ts';
import type { WardenService } from './service.ts';

const SERVICE_TIMEOUT_MS = 2000;

/**
 * `GET /healthz` → 200 `{"status":"ok","connections":N,"containers":M}` while the wire socket
 * listens and the service answers `list` within 2 s; otherwise 503 with the reason.
 */
export class HealthEndpoint {
  private readonly http: Server;

  constructor(wire: WardenServer, service: WardenService) {
    this.http = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/healthz') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try GET /healthz\n');
        return;
      }
      void check(wire, service).then(({ code, body }) => {
        res.writeHead(code, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
      });
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    return this.http.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

async function check(wire: WardenServer, service: WardenService): Promise<{ code: number; body: object }> {
  if (!wire.listening) return { code: 503, body: { status: 'down', reason: 'warden socket is not listening' } };
  let timer: NodeJS.Timeout | undefined;
  try {
    const handles = await Promise.race([
      service.list(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`service did not answer list within ${SERVICE_TIMEOUT_MS} ms`)), SERVICE_TIMEOUT_MS);
      }),
    ]);
    return { code: 200, body: { status: 'ok', connections: wire.connectionCount, containers: handles.length } };
  } catch (err) {
    return { code: 503, body: { status: 'down', reason: (err as Error).message } };
  } finally {
    clearTimeout(timer);
  }
}
