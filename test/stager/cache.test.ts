/**
 * The per-app build cache (functions/stager/cache.ts) through the whole staging task on
 * the embedded S3: restored before the stage phase and saved after it, purgeable, size-bounded,
 * never failing a staging, and never changing the droplet's bytes. The fixture buildpack counts
 * its compiles in its CACHE_DIR.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { create as createTar, extract as extractTar } from 'tar';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { buildCache, cacheKey } from '../../functions/stager/cache.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { type TestStack, putApp, startTestStack } from '../support/aws-stack.ts';
import { type Tree, zipTree } from '../support/zip.ts';

const APPS = new URL('../apps/', import.meta.url).pathname;
let stack: TestStack;
let work: string;
let zipUri: string;
beforeAll(async () => {
  stack = await startTestStack();
  work = mkdtempSync(join(tmpdir(), 'dw-cache-'));
  zipUri = await putApp(stack.config, await zipTree({ 'greeting.txt': readFileSync(join(APPS, 'buildpack-greeting', 'greeting.txt')) } as Tree));
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => vi.stubEnv('DROPWARDEN_BUILDPACKS', join(APPS, 'buildpacks', 'greeting')));
afterEach(() => vi.unstubAllEnvs());

async function stageOnce(appId: string, properties: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<StagingResult> {
  const config = stagerConfigFromEnv({ ...process.env, ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: join(work, 'tasks'), ...env });
  const request = { app_id: appId, download_uri: zipUri, properties: { framework: 'buildpack', ...properties } };
  const { result } = await runStagingTask(request, `${appId}-${Math.random()}`, { config, s3: s3Client(stack.config), log: new TaskLog() });
  expect(result.error).toBeUndefined();
  return result;
}

/** Unpacks an object (a .tgz) from the stack into a fresh directory; undefined when there is none. */
async function fetchTree(bucket: string, key: string): Promise<string | undefined> {
  let body: Readable;
  try {
    body = (await s3Client(stack.config).send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as Readable;
  } catch {
    return undefined;
  }
  const dir = mkdtempSync(join(work, 'tree-'));
  await pipeline(body, extractTar({ cwd: dir }));
  return dir;
}

const compiles = async (appId: string) => {
  const dir = await fetchTree(stack.config.buckets.cache, cacheKey(appId));
  return dir && readFileSync(join(dir, 'buildpack', 'greeting', 'compiles'), 'utf8').trim();
};

it('is saved, restored on the next staging, purged on request; the droplet stays the same bytes', async () => {
  const first = await stageOnce('cached');
  expect(first.task_log).toContain('Build cache: none saved for this app yet');
  expect(first.task_log).toMatch(/Build cache saved: 2 bytes in 3 entries/);
  expect(await compiles('cached')).toBe('1');

  const second = await stageOnce('cached');
  expect(second.task_log).toContain('Build cache restored: 2 bytes');
  expect(await compiles('cached')).toBe('2'); // the buildpack saw the first staging's cache
  expect(second.droplet!.sha256).toBe(first.droplet!.sha256);

  // The cache's lines are in the result's task_log, not in the droplet's staging.log.
  const droplet = await fetchTree(stack.config.buckets.droplets, second.droplet!.uri.replace(/^s3:\/\/[^/]+\//, ''));
  const stagingLog = readFileSync(join(droplet!, 'logs', 'staging.log'), 'utf8');
  expect(stagingLog).toContain('-----> Greeting buildpack: compiling');
  expect(stagingLog).not.toContain('Build cache');

  const purged = await stageOnce('cached', { purge_cache: true });
  expect(purged.task_log).toContain('Build cache purged (properties.purge_cache): staging without it');
  expect(await compiles('cached')).toBe('1');
  expect(purged.droplet!.sha256).toBe(first.droplet!.sha256);
});

it('is not saved over its size limit', async () => {
  const result = await stageOnce('too-big', {}, { DROPWARDEN_CACHE_MAX_BYTES: '1' });
  expect(result.task_log).toContain('Build cache not saved: 2 bytes is over the limit of 1 bytes');
  expect(await compiles('too-big')).toBeUndefined();
});

it('a cache that cannot be reached never fails the staging', async () => {
  const config = stagerConfigFromEnv({
    ...process.env,
    ...stackConfigToEnv(stack.config),
    DROPWARDEN_CACHE_BUCKET: 'no-such-bucket',
    DROPWARDEN_WORK_DIR: join(work, 'tasks'),
  });
  const request = { app_id: 'unreachable', download_uri: zipUri, properties: { framework: 'buildpack' } };
  const { result } = await runStagingTask(request, 'unreachable', { config, s3: s3Client(stack.config), log: new TaskLog() });
  expect(result.error).toBeUndefined();
  expect(result.task_log).toMatch(/Build cache: restoring failed, staging goes on without it: /);
  expect(result.task_log).toMatch(/Build cache: saving failed, staging goes on without it: /);
});

it('restores files and directories only: links in a stored cache are left out', async () => {
  const src = mkdtempSync(join(work, 'src-'));
  mkdirSync(join(src, 'npm'));
  writeFileSync(join(src, 'npm', 'index'), 'kept\n');
  symlinkSync('/etc/passwd', join(src, 'npm', 'escape'));
  const tgz = join(work, 'links.tgz');
  await createTar({ cwd: src, gzip: true, file: tgz }, ['npm']);
  const s3 = s3Client(stack.config);
  await s3.send(new PutObjectCommand({ Bucket: stack.config.buckets.cache, Key: cacheKey('links'), Body: readFileSync(tgz) }));
  const lines: string[] = [];
  const dir = join(work, 'restored');
  const cache = buildCache({
    s3,
    bucket: stack.config.buckets.cache,
    appId: 'links',
    dir,
    maxBytes: 1 << 20,
    purge: false,
    partSizeBytes: 8 << 20,
    signal: new AbortController().signal,
    log: (m) => lines.push(m),
  });
  await cache.restore();
  const found: string[] = [];
  const walk = (d: string) =>
    readdirSync(d, { withFileTypes: true }).forEach((e) => (found.push(relative(dir, join(d, e.name))), e.isDirectory() && walk(join(d, e.name))));
  walk(dir);
  expect(found.sort()).toEqual(['npm', 'npm/index']);
  expect(lines).toEqual(['Build cache restored: 5 bytes (1 links skipped)']);
});
