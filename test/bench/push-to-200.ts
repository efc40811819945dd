/**
 * Push to the first HTTP 200: a node hello app (test/apps/node-hello) through the whole local
 * stack (`LocalStack`: emulator, stager worker, wardend, agent, each its own process, started
 * as `up` starts them), split into its parts.
 *
 *   node test/bench/push-to-200.ts [--runs 5] [--verbose]       (as root; or: npm run bench)
 *
 * Each run pushes the app under a new app id (the same id and droplet would leave the running
 * instance alone; the instances are stopped at the end) and measures, as `dropwarden push` does it:
 *   staging  zip + upload + StagingRequest → StagingResult (the stager's own task time beside it)
 *   start    StartRequest → RUNNING on the reply queue (the agent: droplet fetch, container,
 *            startup, health check) → first HTTP 200 from the instance's URL
 * and, separately, `dropwarden push --json` as a user runs it (a fresh CLI process) until the
 * printed URL answers 200. One warm-up of each first, not counted. Prints each run and the medians.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openAppArchive } from '../../cli/app-archive.ts';
import { AgentApi } from '../../cli/agent-api.ts';
import { startApp, stopApp } from '../../cli/app-client.ts';
import { stageApp } from '../../cli/staging-client.ts';
import type { StackConfig } from '../../lib/stack-config.ts';
import { checkPrerequisites, realHost, PrerequisiteError } from '../../local/prerequisites.ts';
import { LocalStack } from '../../local/up.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, verbose: { type: 'boolean', default: false } }, strict: false });
const runs = Number(args.runs);
const APP = new URL('../apps/node-hello', import.meta.url).pathname;
const CLI = new URL('../../bin/dropwarden.js', import.meta.url).pathname;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Polls `url` until it answers 200; a URL that never does fails the bench, naming it. */
async function firstOk(url: string | null | undefined, withinMs = 30_000): Promise<void> {
  if (!url) throw new Error('the instance has no URL');
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${url} did not answer 200 within ${withinMs / 1000} s`);
}

interface Split {
  total: number;
  staging: number;
  stagerTask: number;
  toRunning: number;
  runningTo200: number;
}

async function pushInProcess(config: StackConfig, api: AgentApi, appId: string): Promise<Split> {
  const t0 = performance.now();
  const result = await stageApp(config, { appId, archive: await openAppArchive(APP), properties: {} });
  if (result.error) throw new Error(`staging failed: ${result.error}`);
  const t1 = performance.now();
  const [instance] = await startApp(config, { appId, dropletUri: result.droplet!.uri, api });
  const t2 = performance.now();
  await firstOk(instance.url);
  const t3 = performance.now();
  const stagerTask = Object.values(result.timings_ms ?? {}).reduce((a, b) => a + (b as number), 0);
  return { total: t3 - t0, staging: t1 - t0, stagerTask, toRunning: t2 - t1, runningTo200: t3 - t2 };
}

function pushWithCli(env: NodeJS.ProcessEnv, appId: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'push', APP, '--app-id', appId, '--json'], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`push failed: ${stderr}`));
      let url: string | undefined;
      try {
        url = (JSON.parse(stdout.trim().split('\n').at(-1)!) as { instances?: Array<{ url?: string }> }).instances?.[0]?.url;
      } catch {
        return reject(new Error(`push printed no JSON result: ${stdout.slice(-500)}`));
      }
      firstOk(url).then(() => resolve(performance.now() - t0), reject);
    });
  });
}

async function main() {
  const host = checkPrerequisites(realHost(process.env));
  if (host.problems.length || host.packages.length) {
    console.log(`skipped: ${new PrerequisiteError(host).message}`);
    return;
  }
  const root = await mkdtemp(join(tmpdir(), 'dropwarden-bench-push-'));
  process.env.DROPWARDEN_STATE_DIR = join(root, 'state'); // never touch a running `up`'s state file
  const stack = new LocalStack({
    env: process.env,
    port: 0,
    dataDir: join(root, 'data'),
    out: (part, line) => (args.verbose ? process.stderr.write(`[${part}] ${line}\n`) : undefined),
  });
  try {
    const config = await stack.start();
    const api = new AgentApi(stack.containers!.agentApi);
    const cliEnv = { DROPWARDEN_STATE_DIR: process.env.DROPWARDEN_STATE_DIR };
    const stop = (appId: string) => stopApp(config, { appId, api });

    // The apps stay running until the end: a stop just before a push would measure how soon
    // the agent is done with the stop, not the push.
    const appIds = ['warmup', 'warmup-cli'];
    await pushInProcess(config, api, 'warmup');
    await pushWithCli(cliEnv, 'warmup-cli');

    const splits: Split[] = [];
    const cli: number[] = [];
    console.log('| run | push → 200 | staging (stager task) | StartRequest → RUNNING | RUNNING → 200 | `dropwarden push` → 200 |');
    console.log('|---|---|---|---|---|---|');
    for (let i = 0; i < runs; i++) {
      const split = await pushInProcess(config, api, `hello-${i}`);
      const viaCli = await pushWithCli(cliEnv, `hello-cli-${i}`);
      appIds.push(`hello-${i}`, `hello-cli-${i}`);
      splits.push(split);
      cli.push(viaCli);
      console.log(`| ${i + 1} | ${s(split.total)} | ${s(split.staging)} (${s(split.stagerTask)}) | ${s(split.toRunning)} | ${s(split.runningTo200)} | ${s(viaCli)} |`);
    }
    const m = (k: keyof Split) => median(splits.map((x) => x[k]));
    console.log(
      `| **median** | **${s(m('total'))}** | ${s(m('staging'))} (${s(m('stagerTask'))}) | ${s(m('toRunning'))} | ${s(m('runningTo200'))} | **${s(median(cli))}** |`,
    );
    console.log(`\ngoal: push → first 200 ≤ 3 s: ${median(cli) <= 3000 ? 'met' : 'not met'} (median via the CLI ${s(median(cli))}, in process ${s(m('total'))})`);
    for (const appId of appIds) await stop(appId);
  } finally {
    await stack.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
