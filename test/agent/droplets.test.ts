/** The droplet cache against the embedded S3 and a plain HTTP server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DropletCache, DropletFetchError } from '../../container-host/agent/droplets.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { startTestStack, type TestStack } from '../support/aws-stack.ts';

let stack: TestStack;
let dir: string;
let server: Server;
let gets = 0;

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
    const cache = new DropletCache({ dir: join(dir, 's3'), s3 });
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
    const cache = new DropletCache({ dir: join(dir, 'missing'), s3: s3Client(stack.config) });
    const err = await cache.fetch(`s3://${stack.config.buckets.droplets}/nope.tgz`).catch((e) => e);
    expect(err).toBeInstanceOf(DropletFetchError);
    expect(err).toMatchObject({ permanent: true, message: `cannot fetch droplet s3://${stack.config.buckets.droplets}/nope.tgz: no such object` });
    expect(readdirSync(join(dir, 'missing'))).toEqual([]);
  });

  it('fetches https:// droplets too', async () => {
    const cache = new DropletCache({ dir: join(dir, 'http'), s3: s3Client(stack.config) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(readFileSync(await cache.fetch(`${base}/d.tgz?X-Amz-Signature=secret`), 'utf8')).toBe('over http');
    const before = gets;
    await cache.fetch(`${base}/d.tgz?X-Amz-Signature=secret`);
    expect(gets).toBe(before);
    const err = await cache.fetch(`${base}/gone.tgz?X-Amz-Signature=secret`).catch((e) => e);
    expect(err).toMatchObject({ permanent: true, message: `cannot fetch droplet ${base}/gone.tgz?…: HTTP 404` });
  });
});
