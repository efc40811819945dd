/**
 * `npm start` until every sample URL answers 200, as a newcomer runs it, twice in a row: the
 * first start (on a stock machine: Debian packages to install, runtime bundles to build) and a
 * second one that finds both in place. Each start shares one state dir, as ~/.dropwarden would.
 *
 *   npx node test/bench/start-to-urls.ts [--starts 2]        (as root, from a fresh clone after npm install)
 *
 * For a stock-machine figure, run it where none of container-host/debian-packages.txt is
 * installed yet (a new machine). Prints, per start: the package install and bundle build times
 * that `dropwarden setup` reports, the time to `ready`, the time until all six URLs answer 200,
 * and the time Ctrl-C takes to leave nothing behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { SAMPLE_APPS } from '../../samples/index.ts';
import { routeGet } from '../support/routes.ts';

const { values: args } = parseArgs({ options: { starts: { type: 'string', default: '2' } }, strict: false });
const starts = Number(args.starts);
const REPO = new URL('../..', import.meta.url).pathname;
const s = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);

interface Start {
  installs?: number;
  bundles?: number;
  ready: number;
  urls: number;
  stop: number;
}

async function firstOk(url: string, withinMs = 60_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    // The samples' routes (http://<name>.localhost:<port>), sent to loopback with their Host.
    if (
      await routeGet(url, { timeoutMs: 2000 }).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer 200 within ${withinMs / 1000} s`);
}

async function oneStart(stateDir: string): Promise<Start> {
  const t0 = performance.now();
  const child = spawn('npm', ['start'], { cwd: REPO, env: { ...process.env, DROPWARDEN_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // npm itself ends by the SIGINT once up has exited; up's own status is what counts.
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(signal === 'SIGINT' ? 0 : code)));
  const result: Partial<Start> = {};
  const urls = new Map<string, string>();
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    output.push(line);
    const installed = /installed in ([\d.]+) s/.exec(line);
    if (installed) result.installs = Number(installed[1]) * 1000;
    const built = /^dropwarden: built in ([\d.]+) s/.exec(line);
    if (built) result.bundles = Number(built[1]) * 1000;
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (line.includes('ready')) result.ready = performance.now() - t0;
      const sample = /^(hello-\S+)\s+(http:\/\/\S+)$/.exec(line);
      if (sample) urls.set(sample[1], sample[2]);
      if (line.startsWith('Serving.')) resolve();
    });
    void exited.then((code) => reject(new Error(`npm start exited (${code}) before serving:\n${output.slice(-30).join('\n')}`)));
  });
  try {
    const missing = SAMPLE_APPS.filter((a) => !urls.has(a.name)).map((a) => a.name);
    if (missing.length) throw new Error(`no URL for ${missing.join(', ')}:\n${output.slice(-30).join('\n')}`);
    await Promise.all([...urls.values()].map((url) => firstOk(url)));
    result.urls = performance.now() - t0;
  } finally {
    const t1 = performance.now();
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    result.stop = performance.now() - t1;
    if (code !== 0) throw new Error(`Ctrl-C: npm start exited ${code}:\n${output.slice(-20).join('\n')}`);
  }
  return result as Start;
}

const stateDir = mkdtempSync(join(tmpdir(), 'dw-bench-start-'));
try {
  process.stdout.write('start   installs  bundles   ready    6 URLs 200   Ctrl-C\n');
  for (let i = 1; i <= starts; i++) {
    const r = await oneStart(stateDir);
    process.stdout.write(`${String(i).padEnd(8)}${s(r.installs).padEnd(10)}${s(r.bundles).padEnd(10)}${s(r.ready).padEnd(9)}${s(r.urls).padEnd(13)}${s(r.stop)}\n`);
  }
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
