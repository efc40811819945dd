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
let router: Router;
try {
  router = new Router(routerConfigFromEnv(process.env, { exactPort: values['exact-port'] }));
  await router.start();
} catch (err) {
  if (!(err instanceof RouterConfigError || err instanceof RouterStartError)) throw err;
  process.stderr.write(`dropwarden router: ${err.message}\n`);
  process.exit(2);
}
process.stdout.write(`${JSON.stringify({ ready: true, port: router.port, admin: router.adminAddress, routes: router.routes })}\n`);
const stop = () => void router.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
