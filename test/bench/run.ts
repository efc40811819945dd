/**
 * `npm run bench`: runs every benchmark in test/bench/ in sequence, each its own process,
 * passing the arguments on (e.g. `npm run bench -- --size-mb 1024 --runs 1`).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .sort();
let failed = 0;
for (const bench of benches) {
  process.stdout.write(`\n== ${bench}\n`);
  const r = spawnSync(process.execPath, [here + bench, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`${bench} failed (status ${r.status ?? r.signal})\n`);
  }
}
process.exitCode = failed ? 1 : 0;
