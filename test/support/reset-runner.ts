/**
 * Run by test/stager/environment-reset.test.ts inside a pid namespace of its own: leaves what an
 * app's install script could (a setsid'd, double-forked survivor, a detached child, files in the
 * temporary directory), resets the environment, and prints what it did and what still runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHandler, resetAfterBatch } from '../../functions/stager/handler.ts';
import type { RecordDeps } from '../../functions/stager/record.ts';

const tmp = process.argv[2];
mkdirSync(join(tmp, 'left', 'deep'), { recursive: true });
writeFileSync(join(tmp, 'left', 'deep', 'file'), 'x');
writeFileSync(join(tmp, '.hidden'), 'x');
// Double-forked into its own session: its parent is gone at once, it is re-parented to init.
spawnSync('bash', ['-c', 'setsid bash -c "exec -a dw-survivor sleep 300" < /dev/null > /dev/null 2>&1 &'], { stdio: 'ignore' });
spawn('bash', ['-c', 'exec -a dw-detached sleep 300'], { detached: true, stdio: 'ignore' }).unref();
await new Promise((r) => setTimeout(r, 300));

const running = () =>
  readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
      } catch {
        return '';
      }
    })
    .filter(Boolean)
    .sort();
const before = running();
// The Lambda entry's wiring: a batch (empty here), then the reset, then the work root made again.
const workRoot = join(tmp, 'dropwarden-staging');
const deps = { config: { workRoot, plugins: { settings: {} }, urls: { allowHttp: false } } } as unknown as RecordDeps;
let batchDone = false;
const handler = createHandler(() => deps, {
  afterBatch: async (d) => {
    batchDone = true;
    await resetAfterBatch(d, tmp);
  },
});
const response = await handler({ Records: [] });
console.log(JSON.stringify({ before, response, batchDone, after: running(), tmp: readdirSync(tmp) }));
