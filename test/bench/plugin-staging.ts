/**
 * Staging time per plugin: each plugin's fixture app (test/apps/) through the whole staging
 * task on the embedded S3 (download → unpack → stage → pack → upload), as the stager runs it.
 *
 *   node test/bench/plugin-staging.ts [--runs 5]
 *
 * Prints, per fixture, the median wall time of the task and of its stage phase over `--runs`
 * stagings (after one warm-up), and the droplet's size. The java_web bundles are built first
 * when missing (resources/tomcat/build-bundle.sh).
 *
 * Each run stages the fixture twice, in turn, so both see the same load:
 * - as the stager does on AWS since the builder split (DESIGN §8): the builder function's own
 *   code (`runBuild`, here in this process instead of a second Lambda, so the invoke is not in
 *   the figure) uploads to the build key, then the stager checks the droplet and publishes it;
 * - as the task did before the split, and still does locally (`runStagingTask`, uploading where
 *   the request asks): the baseline.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { StagingProperties } from '../../contracts/staging.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { runBuild } from '../../functions/builder/build.ts';
import type { Builder } from '../../functions/stager/builder/builder.ts';
import { stageRequest } from '../../functions/stager/stage-request.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { runtimesDir } from '../../plugins/java_web/bundle.ts';
import { putApp, startTestStack } from '../support/aws-stack.ts';
import { treeOf, zipTree } from '../support/zip.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } }, strict: false });
const runs = Number(values.runs);
const apps = new URL('../apps/', import.meta.url).pathname;
const samples = new URL('../../samples/', import.meta.url).pathname;

const fixtures: Array<{ plugin: string; dir: string; properties?: StagingProperties }> = [
  { plugin: 'standalone', dir: join(samples, 'hello-python'), properties: { meta: { command: 'python3 app.py' } } },
  { plugin: 'java_web', dir: join(apps, 'java-web') },
  { plugin: 'node', dir: join(apps, 'node-hello') },
  { plugin: 'node (npm ci)', dir: join(apps, 'node-lockfile') },
  { plugin: 'rack', dir: join(apps, 'ruby-rack') },
  { plugin: 'rack (vendored gem)', dir: join(apps, 'ruby-vendored') },
  { plugin: 'wsgi', dir: join(apps, 'python-wsgi') },
  { plugin: 'php', dir: join(apps, 'php-hello') },
  { plugin: 'static', dir: join(apps, 'static-site') },
  { plugin: 'buildpack', dir: join(apps, 'buildpack-greeting'), properties: { framework: 'buildpack' } },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!existsSync(join(runtimesDir(process.env), 'tomcat10'))) {
  execFileSync(new URL('../../resources/tomcat/build-bundle.sh', import.meta.url).pathname, { stdio: 'inherit' });
}
process.env.DROPWARDEN_BUILDPACKS = join(apps, 'buildpacks', 'greeting');
const stack = await startTestStack();
const work = mkdtempSync(join(tmpdir(), 'dw-bench-plugins-'));
try {
  const config = stagerConfigFromEnv({ ...process.env, ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work });
  const s3 = s3Client(stack.config);
  // The builder function's code, called directly: what Lambda would run, minus the invoke and STS.
  const builder: Builder = {
    async build(input) {
      const job = {
        request_id: input.requestId,
        request: input.request,
        deadline_seconds: input.deadlineSeconds,
        droplet_key: input.buildKey,
        credentials: { accessKeyId: 'x', secretAccessKey: 'x', sessionToken: 'x' },
      };
      const report = await runBuild(job, { config, s3, log: input.log });
      if (report.outcome === 'retry') throw new Error(report.message);
      return report.outcome === 'failed' ? { result: report.result, failure: report.failure } : { result: report.result };
    },
  };
  console.log(`| plugin | fixture | builder path p50 (build + check + publish) | task alone p50 (before the split; local) | ratio | stage phase p50 | droplet |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const f of fixtures) {
    const uri = await putApp(stack.config, await zipTree(treeOf(f.dir)));
    const split: number[] = [];
    const alone: number[] = [];
    const stages: number[] = [];
    let size = 0;
    for (let i = 0; i <= runs; i++) {
      const request = { app_id: `bench-${i}`, download_uri: uri, properties: f.properties ?? {} };
      let started = performance.now();
      const { result } = await stageRequest(request, `bench-${f.plugin}-${i}`, { config, s3, log: new TaskLog(), builder });
      if (result.error) throw new Error(`${f.plugin}: ${result.error}`);
      const splitMs = performance.now() - started;
      started = performance.now();
      const before = await runStagingTask({ ...request, app_id: `bench-alone-${i}` }, `bench-alone-${f.plugin}-${i}`, { config, s3, log: new TaskLog() });
      if (before.result.error) throw new Error(`${f.plugin}: ${before.result.error}`);
      if (i === 0) continue; // warm-up
      split.push(splitMs);
      alone.push(performance.now() - started);
      stages.push(result.timings_ms.stage ?? 0);
      size = result.droplet!.size;
    }
    const name = relative(join(apps, '..', '..'), f.dir);
    console.log(
      `| ${f.plugin} | ${name} | ${median(split).toFixed(0)} ms | ${median(alone).toFixed(0)} ms | ${(median(split) / median(alone)).toFixed(2)}× | ${median(stages).toFixed(0)} ms | ${(size / 1024).toFixed(0)} KiB |`,
    );
  }
} finally {
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}
