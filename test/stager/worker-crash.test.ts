/**
 * SIGKILL the stager worker mid-staging, at the two places a crash is hardest on (DESIGN §9):
 * during the droplet's upload, and between recording the result and sending it. Each time the
 * message comes back after the visibility timeout, and the request gets one droplet and one
 * result, with no partial droplet ever visible. The crash points are found without sleeps: the
 * embedded emulator holds the request the test waits for (its intercept seam), and the worker
 * is killed while that request is held.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { type ClaimState, claimKey } from '../../functions/stager/claims.ts';
import { DEFAULT_CLAIMS_PREFIX } from '../../contracts/bucket-keys.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { type TestStack, drain, holdFirst, sendRaw, sqsCall, startTestStack } from '../support/aws-stack.ts';
import { CLI } from '../support/cli.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let http: Server;
let work: string;
const workers: ChildProcess[] = [];
/** Downloads of the app archive, by request path. */
const gets = new Map<string, number>();
let zip: Buffer;

beforeAll(async () => {
  stack = await startTestStack({ visibilitySeconds: 3 });
  work = mkdtempSync(join(tmpdir(), 'dw-crash-'));
  // Incompressible and over one 5 MiB part: the droplet goes up as a multipart upload.
  zip = await zipTree({ 'app.py': 'print("hi")\n', 'data.bin': randomBytes(7 * 1024 * 1024) });
  http = createServer((req, res) => {
    gets.set(req.url!, (gets.get(req.url!) ?? 0) + 1);
    res.writeHead(200, { 'content-length': zip.length });
    res.end(zip);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
});

afterEach(async () => {
  stack.intercept = undefined;
  await Promise.all(workers.splice(0).map(killed));
});

afterAll(async () => {
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

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

const listDroplets = async (appId: string) =>
  (await s3Client(stack.config).send(new ListObjectsV2Command({ Bucket: stack.config.buckets.droplets, Prefix: `${appId}/` }))).Contents ?? [];

async function readClaim(requestId: string): Promise<ClaimState> {
  const store = { s3: s3Client(stack.config), bucket: stack.config.buckets.droplets, prefix: DEFAULT_CLAIMS_PREFIX };
  const out = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: claimKey(store, requestId) }));
  return JSON.parse(await out.Body!.transformToString()) as ClaimState;
}

async function send(id: string): Promise<string> {
  const path = `/${id}.zip`;
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}${path}`;
  await sendRaw(stack.config, JSON.stringify({ request_id: id, app_id: id, download_uri: url, properties: { meta: { command: 'python3 app.py' } } }));
  return path;
}

/** Every result until the first for `id`, then two more seconds of listening: a second one would be a duplicate. */
async function resultsFor(id: string, ms: number): Promise<StagingResult[]> {
  const results = await drain<StagingResult>(stack.config, stack.config.queues.results, ms, (g) => g.some((r) => r.request_id === id));
  results.push(...(await drain<StagingResult>(stack.config, stack.config.queues.results, 2_000)));
  return results.filter((r) => r.request_id === id);
}

it('stages once, with no partial droplet, after the worker is SIGKILLed during the upload', async () => {
  const id = 'crash-upload';
  // The multipart upload's completion: every part is on the server, the droplet not yet an object.
  const hold = holdFirst(
    stack,
    (r) => r.method === 'POST' && r.bucket === stack.config.buckets.droplets && r.key?.startsWith(`${id}/`) === true && r.query.uploadId !== undefined,
  );
  const path = await send(id);
  const first = startWorker();
  await hold.held;
  await killed(first);
  hold.release();
  expect(await listDroplets(id)).toEqual([]);
  expect(await readClaim(id)).toMatchObject({ state: 'staging' });

  startWorker();
  const results = await resultsFor(id, 30_000);
  expect(results).toHaveLength(1);
  expect(results[0].error).toBeUndefined();
  expect(gets.get(path)).toBe(2); // the dead worker's claim lapsed and the request was staged again
  const listed = await listDroplets(id);
  expect(listed.map((o) => o.Key)).toEqual([`${id}/${results[0].droplet!.sha256}.tgz`]);
  expect(listed[0].Size).toBe(results[0].droplet!.size);
  expect(results[0].droplet!.size).toBeGreaterThan(5 * 1024 * 1024); // more than one part, as the hold assumes
});

it('sends the recorded result, without staging again, after the worker is SIGKILLed between recording and sending it', async () => {
  const id = 'crash-send';
  const hold = holdFirst(stack, (r) => {
    const call = sqsCall(r);
    return call?.action === 'SendMessage' && call.queueUrl === stack.config.queues.results && JSON.parse(call.body.MessageBody as string).request_id === id;
  });
  const path = await send(id);
  const first = startWorker();
  const sending = JSON.parse(sqsCall(await hold.held)!.body.MessageBody as string) as StagingResult;
  // The result is recorded in the claim, and its send is in flight.
  expect(await readClaim(id)).toMatchObject({ state: 'result', result: sending });
  await killed(first);
  hold.release();
  expect(sending).toMatchObject({ request_id: id, droplet: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });

  startWorker();
  // The redelivery leaves the unsent result 10 s to its owner before sending it itself (DESIGN §9).
  const results = await resultsFor(id, 40_000);
  expect(results).toEqual([sending]);
  expect(gets.get(path)).toBe(1);
  expect(await readClaim(id)).toMatchObject({ state: 'sent' });
  expect((await listDroplets(id)).map((o) => o.Key)).toEqual([`${id}/${sending.droplet!.sha256}.tgz`]);
});
