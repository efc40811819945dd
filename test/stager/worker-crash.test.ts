/**
 * SIGKILL the stager worker mid-staging: the message comes back after the visibility timeout,
 * the dead worker's claim lapses, the request is staged once, and no partial droplet shows.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { type TestStack, drain, sendRaw, startTestStack } from '../support/aws-stack.ts';
import { CLI } from '../support/cli.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let http: Server;
let work: string;
const workers: ChildProcess[] = [];
let firstRequestSeen: () => void;
const firstRequest = new Promise<void>((r) => (firstRequestSeen = r));
let gets = 0;

beforeAll(async () => {
  stack = await startTestStack({ visibilitySeconds: 3 });
  work = mkdtempSync(join(tmpdir(), 'dw-crash-'));
  const zip = await zipTree({ 'app.py': 'print("hi")\n', 'data.bin': Buffer.alloc(64 * 1024, 7) });
  http = createServer((req, res) => {
    gets++;
    res.writeHead(200, { 'content-length': zip.length });
    if (gets === 1) {
      res.write(zip.subarray(0, zip.length >> 1)); // half, then stall: the worker is mid-download
      firstRequestSeen();
      return;
    }
    res.end(zip);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  http?.closeAllConnections();
  http?.close();
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'stager-worker'], {
    env: {
      ...process.env,
      ...stackConfigToEnv(stack.config),
      DROPWARDEN_WORK_DIR: work,
      DROPWARDEN_CLAIM_LEASE_SECONDS: '2',
      DROPWARDEN_TEST_ALLOW_PRIVATE_URLS: '1', // the archive is served by http://127.0.0.1
    },
    stdio: 'ignore',
  });
  workers.push(child);
  return child;
}

it('redelivers and stages once after the worker is SIGKILLed mid-staging', async () => {
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/app.zip`;
  await sendRaw(stack.config, JSON.stringify({ request_id: 'crash', app_id: 'crash', download_uri: url, properties: { meta: { command: 'python3 app.py' } } }));
  const first = startWorker();
  await firstRequest;
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));

  const listDroplets = () =>
    s3Client(stack.config).send(new ListObjectsV2Command({ Bucket: stack.config.buckets.droplets, Prefix: 'crash/' }));
  expect((await listDroplets()).KeyCount ?? 0).toBe(0);

  startWorker();
  const results = await drain<StagingResult>(stack.config, stack.config.queues.results, 25_000, (g) => g.length > 0);
  // Keep listening a little: a second result would be a duplicate.
  results.push(...(await drain<StagingResult>(stack.config, stack.config.queues.results, 2_000)));
  expect(results.filter((r) => r.request_id === 'crash')).toHaveLength(1);
  expect(results[0].error).toBeUndefined();
  expect(gets).toBe(2);
  const listed = await listDroplets();
  expect(listed.Contents?.map((o) => o.Key)).toEqual([`crash/${results[0].droplet!.sha256}.tgz`]);
  expect(listed.Contents?.[0].Size).toBe(results[0].droplet!.size);
});
