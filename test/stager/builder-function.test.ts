/**
 * The builder split end to end against the embedded S3 (DESIGN §8): the builder function's
 * handler, run as Lambda would run it (in a pid namespace of its own, as its reset kills what
 * started after it), builds a request from a BuildJob alone and leaves the droplet at the job's
 * build key; the stager's publish checks it against the report and puts it at its content
 * address; a build key holding anything but what was reported is refused and never published.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BuildJob, BuildReport, buildDropletKey, DEFAULT_BUILDS_PREFIX } from '../../contracts/builder.ts';
import { liveLogKey } from '../../contracts/bucket-keys.ts';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { PhaseError } from '../../functions/stager/errors.ts';
import { publish } from '../../functions/stager/publish.ts';
import { EMULATOR_CREDENTIALS, s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { putApp, startTestStack, type TestStack } from '../support/aws-stack.ts';
import { zipTree } from '../support/zip.ts';

const RUNNER = new URL('../support/builder-runner.ts', import.meta.url).pathname;
let stack: TestStack;
const work = mkdtempSync(join(tmpdir(), 'dw-builder-'));
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const config = () => stagerConfigFromEnv({ ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: join(work, 'stager') });
/** The stager's check and publish of what a build left at `buildKey`, to `finalKey` in the droplets bucket. */
const publishTo = (buildKey: string, built: { uri: string; size: number; sha256: string; sha1: string }, finalKey: string, s3 = s3Client(stack.config)) =>
  publish({
    config: config(),
    s3,
    buildKey,
    built,
    uri: `s3://${stack.config.buckets.droplets}/${finalKey}`,
    contentAddressed: true,
    scratchDir: work,
    signal: new AbortController().signal,
  });

async function objectBytes(key: string): Promise<Buffer> {
  const got = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

it('the builder function builds from the job alone and leaves the droplet it reports at the build key; publish puts it at its content address', async () => {
  const requestId = 'build-e2e-1';
  const uri = await putApp(stack.config, await zipTree({ 'app.py': 'print("built")\n' }));
  const buildKey = buildDropletKey(DEFAULT_BUILDS_PREFIX, requestId);
  const job: BuildJob = {
    request_id: requestId,
    request: { app_id: 'built', download_uri: uri, properties: { meta: { command: 'python3 app.py' } } },
    deadline_seconds: 120,
    droplet_key: buildKey,
    credentials: { ...EMULATOR_CREDENTIALS, sessionToken: 'scoped-to-one-request' },
  };
  const jobFile = join(work, 'job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const lambdaTmp = join(work, 'lambda-tmp');
  mkdirSync(lambdaTmp);
  writeFileSync(join(lambdaTmp, 'left-by-an-earlier-build'), 'x');
  // Not spawnSync: the emulator answering the builder runs in this process.
  const run = await promisify(execFile)('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, RUNNER, jobFile, lambdaTmp], {
    encoding: 'utf8',
    timeout: 120_000,
    // What the CDK gives the builder function: the stack's names, env-only, and no credentials of its own.
    env: { PATH: process.env.PATH, ...stackConfigToEnv(stack.config), DROPWARDEN_SANDBOX: 'env-only', DROPWARDEN_WORK_DIR: join(lambdaTmp, 'dropwarden-staging') },
  });
  const report = BuildReport.parse(JSON.parse(run.stdout.trim().split('\n').at(-1)!));
  if (report.outcome !== 'built') throw new Error(`not built: ${JSON.stringify(report)}`);
  const reported = report.result.droplet!;
  expect(reported.uri).toBe(`s3://${stack.config.buckets.droplets}/${buildKey}`);
  const left = await objectBytes(buildKey);
  expect({ size: left.length, sha256: sha256(left) }).toEqual({ size: reported.size, sha256: reported.sha256 });
  expect(report.result.task_log).toContain('Downloading application');
  expect((await objectBytes(liveLogKey('.logs/', requestId))).toString()).toContain('Uploading droplet');
  // Its /tmp was emptied after the build, and its work root made again.
  expect(readdirSync(lambdaTmp)).toEqual(['dropwarden-staging']);

  const finalKey = `built/${reported.sha256}.tgz`;
  const published = await publishTo(buildKey, reported, finalKey);
  expect(published).toEqual({ droplet: { ...reported, uri: `s3://${stack.config.buckets.droplets}/${finalKey}` }, skipped: false });
  expect(sha256(await objectBytes(finalKey))).toBe(reported.sha256);
  await expect(objectBytes(buildKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
}, 180_000);

it('a build key holding other bytes than the build reported is refused, and nothing is published', async () => {
  const buildKey = buildDropletKey(DEFAULT_BUILDS_PREFIX, 'build-e2e-2');
  const s3 = s3Client(stack.config);
  const honest = Buffer.from('the droplet the builder reported');
  await s3.send(new PutObjectCommand({ Bucket: stack.config.buckets.droplets, Key: buildKey, Body: 'something else, put there by the build' }));
  const reported = { uri: `s3://x/${buildKey}`, size: honest.length, sha256: sha256(honest), sha1: createHash('sha1').update(honest).digest('hex') };
  const finalKey = `tampered/${reported.sha256}.tgz`;
  const err = await publishTo(buildKey, reported, finalKey).catch((e) => e);
  expect(err).toBeInstanceOf(PhaseError);
  expect(err.message).toMatch(
    /^Failed uploading droplet: the droplet the build left \(38 bytes, sha256 [0-9a-f]{64}\) is not the one it reported \(32 bytes, sha256 [0-9a-f]{64}\): not published$/,
  );
  await expect(s3.send(new HeadObjectCommand({ Bucket: stack.config.buckets.droplets, Key: finalKey }))).rejects.toMatchObject({ name: 'NotFound' });
  await expect(objectBytes(buildKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
});

it('a build key written again between the check and the copy is refused: what is published is what was hashed', async () => {
  const buildKey = buildDropletKey(DEFAULT_BUILDS_PREFIX, 'build-e2e-3');
  const s3 = s3Client(stack.config);
  const honest = Buffer.from('the droplet as it was checked');
  await s3.send(new PutObjectCommand({ Bucket: stack.config.buckets.droplets, Key: buildKey, Body: honest }));
  // The build's credentials stay valid for a while: it puts other bytes there once the stager has read them.
  const racing = new Proxy(s3, {
    get(target, prop) {
      if (prop !== 'send') return Reflect.get(target, prop);
      return async (command: any, options?: any) => {
        if (command instanceof CopyObjectCommand) {
          await target.send(new PutObjectCommand({ Bucket: stack.config.buckets.droplets, Key: buildKey, Body: 'rewritten by the build' }));
        }
        return target.send(command, options);
      };
    },
  });
  const built = { uri: 'x', size: honest.length, sha256: sha256(honest), sha1: createHash('sha1').update(honest).digest('hex') };
  const finalKey = `raced/${built.sha256}.tgz`;
  const err = await publishTo(buildKey, built, finalKey, racing).catch((e) => e);
  expect(err).toBeInstanceOf(PhaseError);
  expect(err.message).toBe("Failed uploading droplet: the build's droplet changed while it was being checked: not published");
  await expect(s3.send(new HeadObjectCommand({ Bucket: stack.config.buckets.droplets, Key: finalKey }))).rejects.toMatchObject({ name: 'NotFound' });
});
