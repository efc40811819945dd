/**
 * The embedded S3 keeps objects as files under its data dir. S3 keys are any string, so a
 * key's "../" segments, empty segments, "." segments and over-long segments must not reach the
 * filesystem as such: whatever key it is given, through the real SDK, nothing is written outside
 * the data dir, distinct keys stay distinct objects, and every object reads back after a restart.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type RunningEmulator, startEmulator } from '../../local/emulator.ts';

/** The emulator's data dir sits two levels down, so that "../" keys have somewhere to land that we can watch. */
const root = mkdtempSync(join(tmpdir(), 'dw-emu-keys-'));
const dataDir = join(root, 'state', 'data', 's3');
let emulator: RunningEmulator;
let s3: S3Client;

const start = async () => {
  emulator = await startEmulator({ port: 0, region: 'us-east-1', s3StorageDir: dataDir });
  s3 = new S3Client({
    region: 'us-east-1',
    endpoint: emulator.endpoint,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
};

beforeAll(async () => {
  await start();
  await s3.send(new CreateBucketCommand({ Bucket: 'droplets' }));
});
afterAll(async () => {
  await emulator?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** Every file under `dir`, relative to it. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

const HOSTILE = [
  '../../../../../../../../../../tmp/dw-emu-escape',
  '../../etc/passwd-ish',
  '../escaped-sibling',
  '../../../escaped-state',
  'a/b//c/',
  'a/b/c/',
  'probe/..',
  'probe/.',
  'probe',
  './probe',
  '/leading',
  'leading',
  'x/..data/y',
  'k',
  'k.data/inside',
  'k.meta.json/inside',
  `long/${'z'.repeat(300)}`,
  `${'d'.repeat(250)}/x`,
  'per%cent/..%2f..%2fx',
];

it('writes every object inside its data dir, however hostile the key, and keeps distinct keys distinct', async () => {
  const before = new Set(files(root).filter((f) => !f.startsWith(join('state', 'data', 's3'))));
  for (const [i, Key] of HOSTILE.entries()) {
    // Failing a request would be acceptable; escaping or overwriting another key is not.
    await s3.send(new PutObjectCommand({ Bucket: 'droplets', Key, Body: `body ${i}` }));
  }
  // A multipart upload goes through another path in the emulator.
  await new Upload({ client: s3, params: { Bucket: 'droplets', Key: '../../../multipart-escape', Body: Buffer.alloc(6 << 20, 1) }, partSize: 5 << 20 }).done();

  const outside = files(root).filter((f) => !f.startsWith(join('state', 'data', 's3')) && !before.has(f));
  expect(outside).toEqual([]);
  expect(existsSync('/tmp/dw-emu-escape.data')).toBe(false);
  // No pseudo-bucket: the emulator's buckets dir holds only real buckets.
  expect(readdirSync(join(dataDir, 'buckets')).sort()).toEqual(['droplets']);

  for (const [i, Key] of HOSTILE.entries()) {
    const got = await s3.send(new GetObjectCommand({ Bucket: 'droplets', Key }));
    expect(await got.Body!.transformToString(), Key).toBe(`body ${i}`);
  }
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'droplets' }));
  expect(listed.KeyCount).toBe(HOSTILE.length + 1);
});

it('reads every object back after a restart, and deletes them where they are', async () => {
  await emulator.stop();
  await start();
  for (const [i, Key] of HOSTILE.entries()) {
    const got = await s3.send(new GetObjectCommand({ Bucket: 'droplets', Key }));
    expect(await got.Body!.transformToString(), Key).toBe(`body ${i}`);
  }
  for (const Key of [...HOSTILE, '../../../multipart-escape']) await s3.send(new DeleteObjectCommand({ Bucket: 'droplets', Key }));
  expect(files(join(dataDir, 'buckets', 'droplets', 'objects'))).toEqual([]);
  expect(statSync(join(dataDir, 'buckets', 'droplets', 'objects')).isDirectory()).toBe(true);
});
