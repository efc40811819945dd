/**
 * Where a staging request may read its app and write its droplet (functions/stager/uri-policy.ts,
 * lib/net/public-http.ts), with the production settings: s3:// only from the apps bucket and to
 * the droplets bucket (under the app's own prefix, never over the stager's claims or live log),
 * https:// only to public addresses, checked after DNS resolution and on every redirect. Each
 * refusal is a terminal result naming the rule, and nothing is fetched or written.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { stagerConfigFromEnv, type StagerConfig } from '../../functions/stager/config.ts';
import { depsFromConfig } from '../../functions/stager/handler.ts';
import { processRecord } from '../../functions/stager/record.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { nonPublicReason, publicRequest, UrlRefusedError } from '../../lib/net/public-http.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { type TestStack, drain, putApp, startTestStack } from '../support/aws-stack.ts';
import { zipTree } from '../support/zip.ts';

let stack: TestStack;
let work: string;
let config: StagerConfig;
let http: Server;
let port: number;
const hits: string[] = [];
let appZip: Buffer;

beforeAll(async () => {
  stack = await startTestStack();
  work = mkdtempSync(join(tmpdir(), 'dw-places-'));
  // The production defaults: no DROPWARDEN_TEST_ALLOW_PRIVATE_URLS, no DROPWARDEN_{DOWNLOAD_FROM,UPLOAD_TO}.
  config = stagerConfigFromEnv({ ...process.env, ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work });
  appZip = await zipTree({ 'app.py': 'print("hi")\n' });
  http = createServer((req, res) => {
    hits.push(`${req.method} ${req.headers.host}${req.url}`);
    if (req.url === '/to-other') return void res.writeHead(302, { location: `http://127.0.0.2:${port}/app.zip` }).end();
    if (req.url === '/to-localhost') return void res.writeHead(307, { location: `http://localhost:${port}/app.zip` }).end();
    if (req.method === 'PUT') return void req.resume().on('end', () => res.writeHead(200).end());
    res.writeHead(200, { 'content-length': appZip.length }).end(appZip);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  port = (http.address() as AddressInfo).port;
});

afterAll(async () => {
  http?.closeAllConnections();
  http?.close();
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

const stage = (over: Record<string, unknown>) =>
  runStagingTask({ app_id: 'hello', properties: { meta: { command: 'python3 app.py' } }, ...over } as never, `r-${Math.random()}`, {
    config,
    s3: s3Client(stack.config),
    log: new TaskLog(),
  }).then((o) => o.result);

const headEtag = async (Bucket: string, Key: string) => (await s3Client(stack.config).send(new HeadObjectCommand({ Bucket, Key }))).ETag;

describe('download_uri', () => {
  it.each([
    [
      'plain http://, even to a public name',
      () => `http://example.com/app.zip`,
      /download_uri http:\/\/example\.com\/app\.zip: http:\/\/ URLs are not allowed; allowed: s3:\/\/apps\/… or an https:\/\/ URL to a public address \(DROPWARDEN_DOWNLOAD_FROM\)/,
    ],
    ['the loopback server', () => `http://127.0.0.1:${port}/app.zip`, /http:\/\/ URLs are not allowed/],
    ['another bucket the role can read', () => `s3://${stack.config.buckets.droplets}/hello/x.zip`, /the bucket droplets is not allowed; allowed: s3:\/\/apps\/…/],
    ['a bucket listing of the emulator', () => `${stack.config.endpoint}/${stack.config.buckets.droplets}`, /http:\/\/ URLs are not allowed/],
  ])('refuses %s before fetching anything', async (_what, uri, message) => {
    hits.length = 0;
    const r = await stage({ download_uri: uri() });
    expect(r.error).toMatch(/^Staging task failed:\n Invalid staging request: download_uri /);
    expect(r.error).toMatch(message);
    expect(r.timings_ms).toEqual({});
    expect(hits).toEqual([]);
  });

  it.each([
    [
      'the instance metadata service',
      'https://169.254.169.254/latest/meta-data/iam/security-credentials/',
      /https:\/\/169\.254\.169\.254\/latest\/meta-data\/iam\/security-credentials\/ is a link-local address \(the instance metadata service lives there\)/,
    ],
    ['loopback', () => `https://127.0.0.1:${port}/app.zip`, /https:\/\/127\.0\.0\.1:\d+\/app\.zip is a loopback address: only public addresses are fetched/],
    ['a private address', 'https://10.1.2.3/app.zip', /https:\/\/10\.1\.2\.3\/app\.zip is a private address/],
    ['IPv6 loopback', () => `https://[::1]:${port}/app.zip`, /is a loopback address/],
    ['IPv4-mapped IPv6 loopback', () => `https://[::ffff:127.0.0.1]:${port}/app.zip`, /is a loopback address/],
    ['a decimal-integer loopback host', () => `https://2130706433:${port}/app.zip`, /https:\/\/127\.0\.0\.1:\d+\/app\.zip is a loopback address/],
    [
      'a name that resolves to loopback',
      () => `https://localhost:${port}/app.zip`,
      /Failed downloading app: localhost resolves to (127\.0\.0\.1|::1), a loopback address: only public addresses are fetched/,
    ],
  ])('refuses an https:// URL to %s, terminally, without connecting', async (_what, uri, message) => {
    hits.length = 0;
    const r = await stage({ download_uri: typeof uri === 'function' ? uri() : uri });
    expect(r.error).toMatch(/^Staging task failed:\n Failed downloading app: /);
    expect(r.error).toMatch(message);
    expect(hits).toEqual([]);
  });

  it('stages from the apps bucket', async () => {
    const r = await stage({ download_uri: await putApp(stack.config, appZip) });
    expect(r.error).toBeUndefined();
  });
});

describe('every redirect is checked like the first URL', () => {
  // Only 127.0.0.1 (the test server) counts as allowed here, so a redirect elsewhere is the refused hop.
  const onlyTheServer = { allowHttp: true, refuseAddress: (a: string) => (a === '127.0.0.1' ? undefined : 'not the test server') };
  it('refuses a redirect to another address, and to a name resolving to one', async () => {
    hits.length = 0;
    await expect(publicRequest(`http://127.0.0.1:${port}/to-other`, { policy: onlyTheServer })).rejects.toThrow(
      new UrlRefusedError(`http://127.0.0.2:${port} is not the test server: only public addresses are fetched`),
    );
    const viaName = await publicRequest(`http://127.0.0.1:${port}/to-localhost`, { policy: onlyTheServer }).then(
      (r) => (r.body.resume(), r.status),
      (e: Error) => e,
    );
    // localhost resolves to 127.0.0.1 and, on most hosts, ::1: any address refused refuses the hop.
    if (viaName instanceof Error) expect(viaName.message).toMatch(/^localhost resolves to ::1, not the test server/);
    else expect(viaName).toBe(200);
    expect(hits.filter((h) => h.includes('127.0.0.2'))).toEqual([]);
  });
});

it('knows the non-public ranges', () => {
  for (const a of [
    '127.0.0.1',
    '10.0.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:10.0.0.1',
    '::ffff:7f00:1',
    '64:ff9b::a9fe:a9fe',
    'fd00:ec2::254',
  ]) {
    expect(nonPublicReason(a), a).toBeDefined();
  }
  for (const a of ['8.8.8.8', '52.95.110.1', '172.32.0.1', '100.128.0.1', '2600:1f18::1', '::ffff:8.8.8.8']) expect(nonPublicReason(a), a).toBeUndefined();
});

describe('upload_uri', () => {
  it.each([
    [
      "the app's own source zip in the apps bucket",
      (src: string) => src,
      /upload_uri s3:\/\/apps\/[^ ]+: the bucket apps is not allowed; allowed: s3:\/\/droplets\/… or an https:\/\/ URL to a public address \(DROPWARDEN_UPLOAD_TO\)/,
    ],
    [
      "another app's droplet",
      () => `s3://${stack.config.buckets.droplets}/other/droplet.tgz`,
      /the key is not under "hello\/"; an s3:\/\/ upload_uri names a key under "hello\/"/,
    ],
    ['a content address', () => `s3://${stack.config.buckets.droplets}/hello/${'a'.repeat(64)}.tgz`, /the key has the form of a content address/],
    ['the claims prefix', () => `s3://${stack.config.buckets.droplets}/.requests/x.json`, /the key is under \.requests\/, which the stager keeps for itself/],
    ['the live log prefix', () => `s3://${stack.config.buckets.droplets}/.logs/x.log`, /the key is under \.logs\//],
    ['a dot segment', () => `s3://${stack.config.buckets.droplets}/hello/../other/d.tgz`, /an empty, "\." or "\.\." segment/],
    ['an escaped dot segment', () => `s3://${stack.config.buckets.droplets}/hello/%2E%2E/other/d.tgz`, /an empty, "\." or "\.\." segment/],
    ['a malformed escape', () => `s3://${stack.config.buckets.droplets}/hello/%ED%A0%80`, /malformed %-escape/],
    ['a loopback http:// URL', () => `http://127.0.0.1:${port}/put`, /http:\/\/ URLs are not allowed/],
  ])('refuses %s before staging, and writes nothing', async (_what, target, message) => {
    const src = await putApp(stack.config, appZip);
    const srcKey = src.replace(`s3://${stack.config.buckets.apps}/`, '');
    const before = await headEtag(stack.config.buckets.apps, srcKey);
    hits.length = 0;
    const r = await stage({ download_uri: src, upload_uri: target(src) });
    expect(r.error).toMatch(/^Staging task failed:\n Invalid staging request: upload_uri /);
    expect(r.error).toMatch(message);
    expect(r.timings_ms).toEqual({});
    expect(await headEtag(stack.config.buckets.apps, srcKey)).toBe(before);
    expect(hits).toEqual([]);
  });

  it('refuses an https:// upload_uri to a private address at the upload', async () => {
    const r = await stage({ download_uri: await putApp(stack.config, appZip), upload_uri: `https://127.0.0.1:${port}/put?X-Amz-Signature=s` });
    expect(r.error).toMatch(/^Staging task failed:\n Failed uploading droplet: https:\/\/127\.0\.0\.1:\d+\/put\?… is a loopback address/);
    expect(r.error).not.toContain('X-Amz-Signature');
  });

  it("writes under the app's own prefix of the droplets bucket", async () => {
    const uri = `s3://${stack.config.buckets.droplets}/hello/builds/42.tgz`;
    const r = await stage({ download_uri: await putApp(stack.config, appZip), upload_uri: uri });
    expect(r.error).toBeUndefined();
    expect(r.droplet!.uri).toBe(uri);
    const got = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: 'hello/builds/42.tgz' }));
    expect(got.ContentLength).toBe(r.droplet!.size);
  });

  it("never overwrites the request's own claim: the request is answered once and marked sent", async () => {
    const requestId = 'claim-overwrite';
    const claimKey = `.requests/${createHash('sha256').update(requestId).digest('hex')}.json`;
    const body = JSON.stringify({
      request_id: requestId,
      app_id: 'hello',
      download_uri: await putApp(stack.config, appZip),
      upload_uri: `s3://${stack.config.buckets.droplets}/${claimKey}`,
      properties: { meta: { command: 'python3 app.py' } },
    });
    const record = { messageId: 'm-claim', body, attributes: {}, messageAttributes: {} } as unknown as SQSRecord;
    await processRecord(record, depsFromConfig(config));
    const results = (await drain<StagingResult>(stack.config, stack.config.queues.results, 5_000, (g) => g.some((r) => r.request_id === requestId))).filter(
      (r) => r.request_id === requestId,
    );
    expect(results).toHaveLength(1);
    expect(results[0].error).toMatch(/Invalid staging request: upload_uri .*the key is under \.requests\//);
    const claim = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: claimKey }));
    expect(JSON.parse(await claim.Body!.transformToString())).toMatchObject({ state: 'sent' });
    // A redelivery finds it answered: dropped, not staged again, not sent again.
    await processRecord(record, depsFromConfig(config));
    expect((await drain<StagingResult>(stack.config, stack.config.queues.results, 1_500)).filter((r) => r.request_id === requestId)).toEqual([]);
  });
});

it('leaves no droplet outside the places above', async () => {
  const list = await s3Client(stack.config).send(new ListObjectsV2Command({ Bucket: stack.config.buckets.apps }));
  expect((list.Contents ?? []).every((o) => o.Key!.startsWith('test/'))).toBe(true);
});

describe('the request boundary (contracts/common.ts): a terminal result naming the rule, nothing staged', () => {
  it.each([
    ['a path-escaping app_id', { app_id: '../../../../../../../tmp/x' }, /app_id: app_id must be a DNS label/],
    ['a pseudo-bucket app_id', { app_id: '../../etc' }, /app_id: app_id must be a DNS label/],
    ['an app_id with a lone surrogate', { app_id: 'x\ud800' }, /app_id: app_id must be a DNS label/],
    ["a 251-character app_id (the emulator's PUT failed: retried toward the DLQ)", { app_id: 'a'.repeat(251) }, /app_id: app_id must be a DNS label/],
    ['resources.memory of 1e12 MB', { properties: { resources: { memory: 1e12 } } }, /properties\.resources\.memory: Too big: expected number to be <=1048576/],
  ])('%s', async (_what, over, message) => {
    const requestId = `boundary-${Math.random()}`;
    const body = JSON.stringify({ request_id: requestId, app_id: 'hello', download_uri: await putApp(stack.config, appZip), properties: {}, ...over });
    // Resolves (not a RetryableError): the message is deleted, not retried toward the DLQ.
    await processRecord({ messageId: requestId, body, attributes: {}, messageAttributes: {} } as unknown as SQSRecord, depsFromConfig(config));
    const [r] = (await drain<StagingResult>(stack.config, stack.config.queues.results, 5_000, (g) => g.some((x) => x.request_id === requestId))).filter(
      (x) => x.request_id === requestId,
    );
    expect(r.error).toMatch(/^Staging task failed:\n Invalid staging request: the staging request is invalid: /);
    expect(r.error).toMatch(message);
    expect(r.droplet).toBeUndefined();
  });
});
