/**
 * The router as a process of its own, a part of `dropwarden up` (DESIGN §12):
 * `node local/router/run-router.ts [--exact-port]`, settings from the environment
 * (`routerConfigFromEnv`). Prints one JSON line `{"ready":true,"port":…,"admin":…,"routes":…}`
 * once it listens, then one JSON line per request; stops on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { RouterConfigError, routerConfigFromEnv } from './config.ts';
import { Router, RouterStartError } from './router.ts';

const { values } = parseArgs({ options: { 'exact-port': { type: 'boolean', default: false } } });
/**
 * The access log, one JSON line per request, written in batches (at most every 50 ms or 64 KiB):
 * a write to a pipe per request would cost the router a third of its throughput.
 */
let pending: string[] = [];
let pendingBytes = 0;
let flushTimer: NodeJS.Timeout | undefined;
const flush = () => {
  flushTimer = undefined;
  if (!pending.length) return;
  const text = `${pending.join('\n')}\n`;
  pending = [];
  pendingBytes = 0;
  process.stdout.write(text);
};
const write = (line: string) => {
  pending.push(line);
  pendingBytes += line.length;
  if (pendingBytes > 64 * 1024) flush();
  else flushTimer ??= setTimeout(flush, 50);
};

let router: Router;
try {
  router = new Router({ ...routerConfigFromEnv(process.env, { exactPort: values['exact-port'] }), write });
  await router.start();
} catch (err) {
  if (!(err instanceof RouterConfigError || err instanceof RouterStartError)) throw err;
  process.stderr.write(`dropwarden router: ${err.message}\n`);
  process.exit(2);
}
process.stdout.write(`${JSON.stringify({ ready: true, port: router.port, admin: router.adminAddress, routes: router.routes })}\n`);
const stop = () =>
  void router.close().then(() => {
    clearTimeout(flushTimer);
    flush();
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
