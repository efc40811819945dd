/**
 * Pack and upload overlap when the request names an s3:// upload_uri: the upload reads the
 * droplet file as pack writes it (phases/growing-file.ts). The droplet's bytes must be the same
 * as when it is packed first, a multipart upload cut short must leave nothing visible, and
 * either side failing stops the other with the first failure reported.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stagerConfigFromEnv } from '../../functions/stager/config.ts';
import { GrowingFile } from '../../functions/stager/phases/growing-file.ts';
import { upload } from '../../functions/stager/phases/upload.ts';
import { runStagingTask } from '../../functions/stager/task.ts';
import { TaskLog } from '../../functions/stager/task-log.ts';
import { s3Client } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { type TestStack, putApp, startTestStack } from '../support/aws-stack.ts';
import { zipTree } from '../support/zip.ts';

const MiB = 1024 * 1024;
let stack: TestStack;
let work: string;
let zipUri: string;

beforeAll(async () => {
  stack = await startTestStack();
  work = mkdtempSync(join(tmpdir(), 'dw-overlap-'));
  // 10 MiB that gzip cannot shrink (the emulator takes bodies up to 11 MiB): the droplet takes
  // two 5 MiB parts and a bit, so the upload is multipart and its first parts go out while
  // pack is still writing.
  zipUri = await putApp(stack.config, await zipTree({ 'app.py': 'print("hi")\n', 'assets/blob.bin': randomBytes(10 * MiB) }));
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** An S3 client that records each command's name (and runs `onSend`) and can fail one kind of command. */
function spiedS3(failOn?: { command: string; after: number }, onSend?: (command: string) => void) {
  const s3 = new S3Client({
    region: stack.config.region,
    endpoint: stack.config.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  const sent: string[] = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      sent.push(name);
      onSend?.(name);
      if (failOn && name === failOn.command && sent.filter((n) => n === name).length > failOn.after) {
        throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      }
      return next(args);
    },
    { step: 'initialize', name: 'spy' },
  );
  return { s3, sent };
}

const taskConfig = () => stagerConfigFromEnv({ ...stackConfigToEnv(stack.config), DROPWARDEN_WORK_DIR: work });
const request = (upload_uri?: string) => ({
  app_id: 'overlap',
  download_uri: zipUri,
  upload_uri,
  properties: { meta: { command: 'python3 app.py' } },
});

async function objectBytes(key: string): Promise<Buffer> {
  const got = await s3Client(stack.config).send(new GetObjectCommand({ Bucket: stack.config.buckets.droplets, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

async function exists(key: string): Promise<boolean> {
  return s3Client(stack.config)
    .send(new HeadObjectCommand({ Bucket: stack.config.buckets.droplets, Key: key }))
    .then(
      () => true,
      (err: { $metadata?: { httpStatusCode?: number } }) => {
        if (err.$metadata?.httpStatusCode === 404) return false;
        throw err;
      },
    );
}

it('uploads to an s3:// upload_uri while packing, the same bytes as a droplet packed first', async () => {
  const log = new TaskLog();
  // The task logs the droplet's size once pack is done: a part sent before that line went out while packing.
  const logWhenPartsWent: string[] = [];
  const { s3, sent } = spiedS3(undefined, (name) => name === 'UploadPartCommand' && logWhenPartsWent.push(log.toString()));
  const key = 'overlap/streamed.tgz';
  const streamed = await runStagingTask(request(`s3://${stack.config.buckets.droplets}/${key}`), 'streamed', {
    config: taskConfig(),
    s3,
    log,
  });
  expect(logWhenPartsWent[0]).toMatch(/Creating droplet/);
  expect(logWhenPartsWent[0]).not.toMatch(/Droplet is \d+ bytes/);
  expect(streamed.error).toBeUndefined();
  expect(streamed.droplet!.uri).toBe(`s3://${stack.config.buckets.droplets}/${key}`);
  expect(sent.filter((n) => n === 'UploadPartCommand').length).toBe(3); // 5 + 5 + the rest
  const bytes = await objectBytes(key);
  expect(bytes.length).toBe(streamed.droplet!.size);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(streamed.droplet!.sha256);

  // Content-addressed: packed whole, then uploaded. Same input, same bytes.
  const packedFirst = await runStagingTask(request(), 'packed-first', { config: taskConfig(), s3: s3Client(stack.config), log: new TaskLog() });
  expect(packedFirst.error).toBeUndefined();
  expect(packedFirst.droplet!.sha256).toBe(streamed.droplet!.sha256);
  expect(packedFirst.droplet!.size).toBe(streamed.droplet!.size);
});

it('reports the upload\'s failure, stops packing, and leaves no droplet when an upload part is refused', async () => {
  const { s3, sent } = spiedS3({ command: 'UploadPartCommand', after: 1 });
  const key = 'overlap/refused.tgz';
  const log = new TaskLog();
  const result = await runStagingTask(request(`s3://${stack.config.buckets.droplets}/${key}`), 'refused', { config: taskConfig(), s3, log });
  expect(result.error).toMatch(/^Staging task failed:\n .*access to s3:\/\/droplets\/overlap\/refused\.tgz was denied/);
  expect(result.droplet).toBeUndefined();
  expect(sent).toContain('AbortMultipartUploadCommand');
  expect(sent).not.toContain('CompleteMultipartUploadCommand');
  expect(await exists(key)).toBe(false);
  expect(log.toString()).not.toMatch(/Droplet is \d+ bytes/);
});

it('aborts the multipart upload, leaving nothing visible, when the file being uploaded fails part-way', async () => {
  const { s3, sent } = spiedS3();
  const path = join(work, 'growing.tgz');
  const part1 = randomBytes(6 * MiB);
  writeFileSync(path, part1);
  const growing = new GrowingFile(path);
  growing.grew(part1.length);
  const key = 'overlap/cut-short.tgz';
  const uploading = upload({
    source: { packing: growing.reader() },
    uri: `s3://${stack.config.buckets.droplets}/${key}`,
    s3,
    partSizeBytes: 5 * MiB,
    concurrency: 2,
    contentAddressed: false,
    signal: new AbortController().signal,
  });
  // Wait until the first part has gone out, then fail the writer.
  while (!sent.includes('UploadPartCommand')) await new Promise((r) => setTimeout(r, 10));
  growing.fail(new Error('pack failed'));
  await expect(uploading).rejects.toThrow(/pack failed/);
  expect(sent).toContain('AbortMultipartUploadCommand');
  expect(sent).not.toContain('CompleteMultipartUploadCommand');
  expect(await exists(key)).toBe(false);
});

it('reads a growing file to its end, in order, whatever the writer\'s pace', async () => {
  const path = join(work, 'paced.bin');
  writeFileSync(path, '');
  const growing = new GrowingFile(path);
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const chunk of growing.reader() as Readable) chunks.push(chunk as Buffer);
  })();
  const written: Buffer[] = [];
  let size = 0;
  for (let i = 0; i < 40; i++) {
    const piece = randomBytes(1 + ((i * 7919) % 70_000));
    appendFileSync(path, piece);
    written.push(piece);
    size += piece.length;
    growing.grew(size);
    if (i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  growing.finish();
  await reading;
  expect(Buffer.concat(chunks).equals(Buffer.concat(written))).toBe(true);
  expect(Buffer.concat(chunks).equals(readFileSync(path))).toBe(true);
});
