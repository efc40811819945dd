/**
 * Every plugin's fixture app through the whole staging task on the embedded S3 (download → unpack → stage →
 * pack → upload): staged twice to the same sha256, the droplet fetched from the droplets
 * bucket, unpacked into a temp dir, started with ./startup -p PORT, answered, and stopped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { runtimesDir } from '../../plugins/java_web/bundle.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { type TestStack, putApp, startTestStack } from '../support/aws-stack.ts';
import { treeOf, zipTree } from '../support/zip.ts';
import { buildZip } from '../support/zip-builder.ts';
import { appPath, cleanup, startDroplet, stopDroplet } from './helpers.ts';

let stack: TestStack;
let work: string;
beforeAll(async () => {
  if (!existsSync(join(runtimesDir(process.env), 'tomcat10'))) {
    execFileSync(new URL('../../resources/tomcat/build-bundle.sh', import.meta.url).pathname, { stdio: 'pipe' });
  }
  vi.stubEnv('DROPWARDEN_BUILDPACKS', appPath('buildpacks/greeting'));
  stack = await startTestStack();
  work = mkdtempSync(join(tmpdir(), 'dw-plugins-work-'));
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});
afterEach(cleanup);

async function stageThroughTask(fixture: string, properties: Record<string, unknown>) {
  const config = stagerConfigFromEnv({ ...process.env, ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work });
  const uri = await putApp(stack.config, await zipTree(treeOf(appPath(fixture))));
  const request = { app_id: fixture, download_uri: uri, properties };
  return (await runStagingTask(request, `${fixture}-${Date.now()}`, { config, s3: s3Client(stack.config), log: new TaskLog() })).result;
}

it.each([
  { fixture: 'node-hello', body: 'Hello from node (production)\n', properties: {} },
  { fixture: 'ruby-vendored', body: 'Hello from a vendored gem\n', properties: {} },
  { fixture: 'python-wsgi', body: 'Hello from wsgi\n', properties: {} },
  // npm ci runs the npm that ships with the stager (the `npm` package among its dependencies).
  { fixture: 'node-lockfile', body: 'Hello, node, from a locked dependency\n', properties: {} },
  { fixture: 'monorepo', body: 'Hello from services/api\n', properties: { app_root: 'services/api' } },
  { fixture: 'python-procfile', body: 'Hello from a plain Python script\n', properties: {} },
  { fixture: 'ruby-rack', body: 'Hello from rack (production)\n', properties: {} },
  { fixture: 'ruby-sinatra', body: 'Hello from sinatra\n', properties: {} },
  { fixture: 'php-hello', body: 'Hello from php 8\n', properties: {} },
  { fixture: 'static-site', body: '<p>Hello from a static site</p>', properties: {} },
  { fixture: 'buildpack-greeting', body: 'profile.d: sourced at start', properties: {} },
  // A JSP needs no compiling; Tomcat comes from the bundles resources/tomcat/build-bundle.sh makes.
  { fixture: 'java-web', body: 'JSP says 42', properties: {}, path: '/hello.jsp' },
])('$fixture: staged twice to the same droplet, which runs from its unpacked tgz', async ({ fixture, body, properties, path }) => {
  const first = await stageThroughTask(fixture, properties);
  expect(first.error).toBeUndefined();
  const second = await stageThroughTask(fixture, properties);
  expect(second.droplet!.sha256).toBe(first.droplet!.sha256);
  expect(first.task_log).toMatch(/Using \w+: /);

  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(first.droplet!.uri)!;
  const got = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const dir = mkdtempSync(join(tmpdir(), 'dw-droplet-'));
  try {
    writeFileSync(join(dir, 'droplet.tgz'), Buffer.from(await got.Body!.transformToByteArray()));
    execFileSync('tar', ['xzf', 'droplet.tgz'], { cwd: dir });
    const info = JSON.parse(readFileSync(join(dir, 'staging_info.json'), 'utf8'));
    expect(info).toEqual(first.staging_info);
    const running = await startDroplet(dir);
    expect(await (await running.get(path)).text()).toContain(body);
    await stopDroplet(dir, running);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("a .war inside the app is unpacked under the task's own unpack limits, not the environment's", async () => {
  // The task's config says 3 entries; the process environment says nothing (the default, 100 000).
  const env = { ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work, DROPWARDEN_UNPACK_MAX_ENTRIES: '3' };
  const config = stagerConfigFromEnv(env);
  const war = buildZip(['WEB-INF/web.xml', 'WEB-INF/a.jsp', 'WEB-INF/b.jsp', 'index.jsp'].map((name) => ({ name, data: '<web-app/>' })));
  const uri = await putApp(stack.config, await zipTree({ 'hello.war': war }));
  const { result, failure } = await runStagingTask({ app_id: 'war-limits', download_uri: uri, properties: {} }, `war-limits-${Date.now()}`, {
    config,
    s3: s3Client(stack.config),
    log: new TaskLog(),
  });
  expect(result.error).toBe(
    'Staging task failed:\n Staging plugin failed: Web application staging failed: cannot unpack hello.war: the archive has 4 entries, over the limit of 3',
  );
  expect(failure).toMatchObject({ phase: 'stage' });
});
