/**
 * Requests to a route (`http://<app>.localhost:<port>/…`) as curl or a browser sends them: to
 * loopback, with the route's Host header (this box's resolver does not map `*.localhost`).
 */
import { Agent, request } from 'node:http';

export interface RouteResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const agent = new Agent({ keepAlive: true });

export function routeGet(
  url: string,
  opts: { path?: string; headers?: Record<string, string>; timeoutMs?: number; method?: string; body?: string; keepAlive?: boolean } = {},
): Promise<RouteResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(u.port || 80),
        path: opts.path ?? `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        headers: { host: u.host, ...opts.headers },
        agent: opts.keepAlive === false ? undefined : agent,
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url} took over ${opts.timeoutMs ?? 5000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
