/**
 * The stager function as it would deploy: the esbuild bundle that `cdk synth` produces, its size
 * and its cold import time (a fresh Node process importing it, as a Lambda cold start does).
 * Goals (issue 8): ≤ 1.5 MB and ≤ 150 ms.
 *
 *   node test/bench/lambda-bundle.ts [--runs 15]
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stagerBundleDir, synthesize } from '../../cdk/test/synth.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } }, strict: false });
const runs = Number(values.runs);

const dir = stagerBundleDir(synthesize({ bundle: true }));
const files = readdirSync(dir).map((f) => ({ f, size: statSync(join(dir, f)).size }));
const total = files.reduce((n, x) => n + x.size, 0);
const entry = join(dir, 'index.mjs');

const probe = `const t = performance.now(); await import(${JSON.stringify(entry)}); process.stdout.write(String(performance.now() - t));`;
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
    env: { PATH: process.env.PATH, AWS_REGION: 'us-east-1', DROPWARDEN_RESULTS_QUEUE_URL: 'x', DROPWARDEN_DROPLETS_BUCKET: 'x' },
    encoding: 'utf8',
  });
  times.push(Number(out));
}
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
const mb = (n: number) => (n / 1_000_000).toFixed(2);
console.log(`bundle: ${files.map((x) => `${x.f} ${mb(x.size)} MB`).join(', ')}; total ${mb(total)} MB (goal ≤ 1.5 MB)`);
console.log(`cold import over ${runs} fresh processes: min ${q(0).toFixed(0)} ms, p50 ${q(0.5).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms (goal ≤ 150 ms)`);
