import { afterEach, beforeEach, expect, it } from 'vitest';
import { WardenClient, WardenResponseError } from '../../../container-host/warden/client/index.ts';
import { startTestServer } from '../server/setup.ts';

// The server runs the in-memory fake service: this covers framing of large answers only.
const MAX = 1024 * 1024;
let t: Awaited<ReturnType<typeof startTestServer>>;
let client: WardenClient;
const handle = Buffer.from('big');
beforeEach(async () => {
  t = await startTestServer({ maxFrameBytes: MAX });
  client = await WardenClient.connect(t.socketPath, { maxFrameBytes: MAX });
  await client.call('Create', { handle });
});
afterEach(async () => {
  client.close();
  await t.stop();
});

it('carries large non-UTF-8 output intact', async () => {
  const bytes = Buffer.alloc(400 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131) & 0xff;
  const run = await client.call('Run', { handle, script: `out ${bytes.toString('hex')}; fill 100000` });
  expect(run.stdout!.length).toBe(bytes.length + 100000);
  expect(Buffer.compare(run.stdout!.subarray(0, bytes.length), bytes)).toBe(0);
});

it('answers with an ErrorResponse when the response would exceed the frame limit', async () => {
  const err = await client.call('Run', { handle, script: `fill ${MAX}` }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WardenResponseError);
  expect((err as Error).message).toMatch(/^response too large: frame length \d+ exceeds the maximum of 1048576/);
  expect(await client.call('Echo', { message: 'fine' })).toEqual({ message: 'fine' });
});

it('refuses on the client side a request over the frame limit', async () => {
  const err = await client.call('Echo', { message: 'x'.repeat(MAX) }).catch((e: unknown) => e);
  expect((err as Error).name).toBe('FrameTooLargeError');
  expect(await client.call('Ping', {})).toEqual({});
});
