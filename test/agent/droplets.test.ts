/** The droplet cache against the embedded S3 and a plain HTTP server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentConfigFromEnv } from '../../container-host/agent/config.ts';
import { DropletCache, DropletFetchError } from '../../container-host/agent/droplets.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { ANY_URL } from '../../lib/net/public-http.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { startTestStack, type TestStack } from '../support/aws-stack.ts';

let stack: TestStack;
let dir: string;
let server: Server;
let gets = 0;

/** The agent's production settings for this stack: s3:// from the droplets bucket, https:// to public addresses. */
const production = () => {
  const c = agentConfigFromEnv({ ...stackConfigToEnv(stack.config), DROPWARDEN_AGENT_DIR: dir, DROPWARDEN_AGENT_ADVERTISE_HOST: '127.0.0.1' });
  return { places: c.dropletsFrom, urls: c.urls };
};

beforeAll(async () => {
  stack = await startTestStack();
  dir = mkdtempSync(join(tmpdir(), 'dw-droplets-'));
  server = createServer((req, res) => {
    gets++;
    if (req.url?.split('?')[0] === '/d.tgz') res.end('over http');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  server.close();
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the droplet cache', () => {
  it('fetches an s3:// droplet once, however many ask at once', async () => {
    const s3 = s3Client(stack.config);
    const bucket = stack.config.buckets.droplets;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'app/1.tgz', Body: Buffer.alloc(3 << 20, 7) }));
    const cache = new DropletCache({ dir: join(dir, 's3'), s3, ...production() });
    const uri = `s3://${bucket}/app/1.tgz`;
    const paths = await Promise.all([cache.fetch(uri), cache.fetch(uri), cache.fetch(uri)]);
    expect(new Set(paths).size).toBe(1);
    expect(readFileSync(paths[0]).equals(Buffer.alloc(3 << 20, 7))).toBe(true);
    expect(readdirSync(join(dir, 's3'))).toHaveLength(1);
    // Gone from S3: the cached file still serves.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'app/1.tgz' }));
    expect(await cache.fetch(uri)).toBe(paths[0]);
    await cache.prune([]);
    expect(readdirSync(join(dir, 's3'))).toEqual([]);
  });

  it('says a missing droplet will not appear by retrying', async () => {
    const cache = new DropletCache({ dir: join(dir, 'missing'), s3: s3Client(stack.config), ...production() });
    const err = await cache.fetch(`s3://${stack.config.buckets.droplets}/nope.tgz`).catch((e) => e);
    expect(err).toBeInstanceOf(DropletFetchError);
    expect(err).toMatchObject({ permanent: true, message: `cannot fetch droplet s3://${stack.config.buckets.droplets}/nope.tgz: no such object` });
    expect(readdirSync(join(dir, 'missing'))).toEqual([]);
  });

  it('fetches https:// droplets too', async () => {
    // The server is http://127.0.0.1: what DROPWARDEN_TEST_ALLOW_PRIVATE_URLS=1 allows (tests only).
    const cache = new DropletCache({ dir: join(dir, 'http'), s3: s3Client(stack.config), ...production(), urls: ANY_URL });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(readFileSync(await cache.fetch(`${base}/d.tgz?X-Amz-Signature=secret`), 'utf8')).toBe('over http');
    const before = gets;
    await cache.fetch(`${base}/d.tgz?X-Amz-Signature=secret`);
    expect(gets).toBe(before);
    const err = await cache.fetch(`${base}/gone.tgz?X-Amz-Signature=secret`).catch((e) => e);
    expect(err).toMatchObject({ permanent: true, message: `cannot fetch droplet ${base}/gone.tgz?…: HTTP 404` });
  });

  it.each([
    [
      'a loopback http:// URL',
      () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/d.tgz`,
      /http:\/\/ URLs are not allowed; allowed: s3:\/\/droplets\/… or an https:\/\/ URL to a public address \(DROPWARDEN_DROPLETS_FROM\)/,
    ],
    [
      'a loopback https:// URL',
      () => `https://127.0.0.1:${(server.address() as AddressInfo).port}/d.tgz`,
      /https:\/\/127\.0\.0\.1:\d+\/d\.tgz is a loopback address: only public addresses are fetched/,
    ],
    ['the instance metadata service', () => 'https://169.254.169.254/latest/user-data', /is a link-local address/],
    [
      'a name resolving to loopback',
      () => `https://localhost:${(server.address() as AddressInfo).port}/d.tgz`,
      /localhost resolves to (127\.0\.0\.1|::1), a loopback address/,
    ],
    ['another bucket', () => `s3://${stack.config.buckets.apps}/app/1.tgz`, /the bucket apps is not allowed/],
  ])('refuses %s, permanently, without fetching it', async (_what, uri, message) => {
    const cache = new DropletCache({ dir: join(dir, 'refused'), s3: s3Client(stack.config), ...production() });
    const before = gets;
    const err = await cache.fetch(uri()).catch((e) => e);
    expect(err).toBeInstanceOf(DropletFetchError);
    expect(err.permanent).toBe(true);
    expect(err.message).toMatch(message);
    expect(gets).toBe(before);
    expect(readdirSync(join(dir, 'refused'))).toEqual([]);
  });
});
