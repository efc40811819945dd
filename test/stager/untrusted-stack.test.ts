/**
 * DESIGN §8 acceptance on the stack's own parts: the staging task (download → unpack → stage →
 * pack → upload) against the embedded S3+SQS emulator on loopback, with AWS credentials in the
 * stager's environment. test/apps/node-probe's postinstall tries a PUT over another app's droplet
 * on the emulator (and the other probes); every probe fails, the other droplet is untouched,
 * and the host keeps no file and no process.
 */
import { execSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { putApp, startTestStack, type TestStack } from '../support/aws-stack.ts';
import { treeOf, zipTree } from '../support/zip.ts';

let stack: TestStack;
const work = mkdtempSync(join(tmpdir(), 'dw-untrusted-'));
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
});

it("node-probe staged by the task: every probe fails, the other app's droplet is untouched, nothing is left", async () => {
  const tag = `s${process.pid}`;
  const s3 = s3Client(stack.config);
  const otherKey = 'droplets/other-app/droplet.tgz';
  await s3.send(new PutObjectCommand({ Bucket: stack.config.buckets.droplets, Key: otherKey, Body: 'the other app' }));
  const app = join(work, 'app');
  cpSync(new URL('../apps/node-probe', import.meta.url).pathname, app, { recursive: true });
  writeFileSync(join(app, 'probe-tag'), tag);
  writeFileSync(join(app, 'probe-s3'), new URL(stack.config.endpoint!).host);
  const uri = await putApp(stack.config, await zipTree(treeOf(app)));
  const env = {
    ...process.env,
    ...stackConfigToEnv(stack.config),
    DROPWARDEN_WORK_DIR: join(work, 'staging'),
    AWS_ACCESS_KEY_ID: 'AKIAPROBE',
    AWS_SECRET_ACCESS_KEY: 'probe-secret',
  };
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY });
  const log = new TaskLog();
  try {
    const { result } = await runStagingTask({ app_id: 'probe-app', download_uri: uri, properties: {} }, 'probe-r1', { config: stagerConfigFromEnv(env), s3, log });
    expect(result.error).toBeUndefined();
  } finally {
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    else process.env.AWS_ACCESS_KEY_ID = saved.id;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
  }
  const probes = Object.fromEntries(
    log
      .messages()
      .split('\n')
      .filter((l) => l.startsWith('probe: '))
      .map((l) => l.slice(7).split('=') as [string, string]),
  );
  expect(probes).toEqual({ env: 'clean', procenv: '0', tmpwrite: 'private-only', metadata: 'refused', ecsmeta: 'refused', s3put: 'refused', done: 'yes' });
  const other = await s3.send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: otherKey }));
  expect(await other.Body!.transformToString()).toBe('the other app');
  expect(existsSync(`/tmp/dw-probe-${tag}`)).toBe(false);
  expect(existsSync(`/var/tmp/dw-probe-${tag}`)).toBe(false);
  expect(execSync(`pgrep -f '[d]w-probe-survivor-${tag}' || true`).toString().trim()).toBe('');
});
