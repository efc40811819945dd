/**
 * The local router's cost (issue 17): a hello app (a Node HTTP server, its own process) loaded
 * with autocannon directly and through the real router process (`local/router/run-router.ts`,
 * its access log read as `up` reads it), alternately, in the same run.
 *
 *   npx node test/bench/router.ts [--duration 10] [--connections 10] [--rounds 2]
 *
 * Prints, per round and as medians: autocannon's requests/s and p99 (it counts whole
 * milliseconds), and p50/p99 of sequential requests on one kept-alive connection (measured to
 * the microsecond), then the router's added p50 and its throughput ratio. Goal: ≤ 1 ms added at p50, ≥ 0.8× direct throughput.
 * Needs nothing but Node (no root, no containers).
 *
 * Two references, measured the same way in the same rounds, say what any proxy hop costs on
 * this machine: the least a Node proxy can do (http.request piped, one upstream, no headers
 * added, no log), and HAProxy (one thread, routing by Host as the router does) when `haproxy`
 * is on PATH (`apt-get install --no-upgrade haproxy`; the run says when it is not).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ROUTER_ADMIN } from '../../contracts/routes.ts';

const { values: args } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '10' }, rounds: { type: 'string', default: '2' } },
  strict: false,
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const children: ChildProcess[] = [];

function start(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let ready = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // The rest (the router's access log) is read and dropped, as `up` drops structured info lines.
      if (!ready && line.includes('"ready"')) {
        ready = true;
        resolve({ child, ready: JSON.parse(line) });
      }
    });
    child.once('exit', (code) => !ready && reject(new Error(`${argv.join(' ')} exited (${code})`)));
  });
}

const HELLO = `
const http = require('node:http');
const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('hello\\n'); });
server.keepAliveTimeout = 65000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ ready: true, port: server.address().port })));
`;

/** The least a Node proxy can do: every request piped to one upstream over kept-alive sockets. */
const MINIMAL_PROXY = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const upstream = Number(process.argv[1]);
const server = http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers, agent }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  req.pipe(up);
});
server.keepAliveTimeout = 65000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ ready: true, port: server.address().port })));
`;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** HAProxy routing `hello.localhost` to the app, one thread; undefined when it is not installed. */
async function startHaproxy(upstream: number, dir: string): Promise<{ port: number; version: string } | undefined> {
  let version: string;
  try {
    version = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return undefined;
  }
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  nbthread 1',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 65s',
      '  timeout server 65s',
      '  option http-keep-alive',
      'frontend routes',
      `  bind 127.0.0.1:${port}`,
      '  option forwardfor',
      '  http-request set-var(txn.app) req.hdr(host),field(1,:),regsub(\\.localhost$,)',
      '  http-request return status 404 content-type text/plain lf-string "no app %[var(txn.app)]" unless { var(txn.app) -m str hello }',
      '  default_backend hello',
      'backend hello',
      '  http-reuse always',
      `  server i0 127.0.0.1:${upstream}`,
      '',
    ].join('\n'),
  );
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  for (let i = 0; i < 50; i++) {
    // (fetch cannot set Host.)
    const up = await new Promise<boolean>((resolve) =>
      request({ host: '127.0.0.1', port, path: '/', headers: { host: 'hello.localhost' } }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
        .on('error', () => resolve(false))
        .end(),
    );
    if (up) return { port, version };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('haproxy did not answer within 5 s');
}

interface Figures {
  p50: number;
  p99: number;
  loadP99: number;
  rps: number;
  errors: number;
  non2xx: number;
}

const SEQUENTIAL = 3000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** Latency of one request at a time over one kept-alive connection, in ms. */
async function sequential(port: number, host?: string): Promise<{ p50: number; p99: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/', agent, headers: host ? { host } : {} }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  agent.destroy();
  return { p50: pct(times, 50), p99: pct(times, 99) };
}

async function load(port: number, host?: string): Promise<Figures> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: DURATION, headers: host ? { host } : {} });
  const seq = await sequential(port, host);
  return { ...seq, loadP99: r.latency.p99, rps: r.requests.average, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (name: string, f: Figures) =>
  `${name.padEnd(16)} sequential p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms | under load ${Math.round(f.rps).toString().padStart(6)} req/s, p99 ${f.loadP99} ms | errors ${f.errors}, non-2xx ${f.non2xx}`;

const scratch = mkdtempSync(join(tmpdir(), 'dw-bench-router-'));
try {
  const hello = await start(['-e', HELLO]);
  const helloPort = hello.ready.port as number;
  const minimal = (await start(['-e', MINIMAL_PROXY, String(helloPort)])).ready.port as number;
  const haproxy = await startHaproxy(helloPort, scratch);
  if (!haproxy) console.log('haproxy is not installed: its reference is not measured (apt-get install --no-upgrade haproxy)');
  const router = await start([new URL('../../local/router/run-router.ts', import.meta.url).pathname], {
    DROPWARDEN_ROUTER_PORT: '0',
    DROPWARDEN_ROUTER_HOST: '127.0.0.1',
    DROPWARDEN_ROUTER_ADMIN: '127.0.0.1:0',
  });
  const routerPort = router.ready.port as number;
  const admin = router.ready.admin as string;
  const res = await fetch(`http://${admin}${ROUTER_ADMIN.target('bench', 'hello', 'i0')}`, {
    method: 'PUT',
    body: JSON.stringify({ app_id: 'hello', instance_id: 'i0', index: 0, host: '127.0.0.1', port: helloPort }),
  });
  if (!res.ok) throw new Error(`registering the hello app failed: ${res.status} ${await res.text()}`);
  const host = `hello.localhost:${routerPort}`;
  // Warm both paths (JIT, kept-alive sockets) before measuring.
  await autocannon({ url: `http://127.0.0.1:${routerPort}/`, connections: CONNECTIONS, duration: 2, headers: { host } });
  await autocannon({ url: `http://127.0.0.1:${helloPort}/`, connections: CONNECTIONS, duration: 2 });
  const direct: Figures[] = [];
  const routed: Figures[] = [];
  const references: Record<string, Figures[]> = { 'node proxy': [], ...(haproxy ? { haproxy: [] } : {}) };
  console.log(
    `autocannon: ${CONNECTIONS} connections, ${DURATION} s per measurement, ${ROUNDS} rounds (direct, routed, then the references: a minimal node proxy${haproxy ? `, ${haproxy.version}` : ''})`,
  );
  for (let round = 1; round <= ROUNDS; round++) {
    direct.push(await load(helloPort));
    console.log(row(`direct  #${round}`, direct.at(-1)!));
    routed.push(await load(routerPort, host));
    console.log(row(`routed  #${round}`, routed.at(-1)!));
    references['node proxy'].push(await load(minimal));
    console.log(row(`node proxy #${round}`, references['node proxy'].at(-1)!));
    if (haproxy) {
      references.haproxy.push(await load(haproxy.port, 'hello.localhost'));
      console.log(row(`haproxy #${round}`, references.haproxy.at(-1)!));
    }
  }
  const med = (fs: Figures[]): Figures => ({
    p50: median(fs.map((f) => f.p50)),
    p99: median(fs.map((f) => f.p99)),
    loadP99: median(fs.map((f) => f.loadP99)),
    rps: median(fs.map((f) => f.rps)),
    errors: fs.reduce((a, f) => a + f.errors, 0),
    non2xx: fs.reduce((a, f) => a + f.non2xx, 0),
  });
  const d = med(direct);
  const r = med(routed);
  console.log(row('direct  median', d));
  console.log(row('routed  median', r));
  const added = r.p50 - d.p50;
  const ratio = r.rps / d.rps;
  console.log(
    `router adds ${added.toFixed(2)} ms at p50 (goal ≤ 1 ms: ${added <= 1 ? 'met' : 'missed'}), keeps ${ratio.toFixed(2)}× the direct throughput (goal ≥ 0.8×: ${ratio >= 0.8 ? 'met' : 'missed'})`,
  );
  for (const [name, figures] of Object.entries(references)) {
    const f = med(figures);
    console.log(row(`${name} median`, f));
    console.log(`  reference: ${name} adds ${(f.p50 - d.p50).toFixed(2)} ms at p50 and keeps ${(f.rps / d.rps).toFixed(2)}× the direct throughput`);
  }
  if (r.errors || r.non2xx) process.exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(scratch, { recursive: true, force: true });
}
