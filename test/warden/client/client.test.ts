import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenClient, WardenClientClosedError, WardenConnectionError, WardenPool, WardenResponseError } from '../../../container-host/warden/client/index.ts';
import type { StreamResponse } from '../../../container-host/warden/protocol/index.ts';
import { startTestServer } from '../server/setup.ts';

// The server runs the in-memory fake service: these tests cover the client and the wire only.
let t: Awaited<ReturnType<typeof startTestServer>>;
let client: WardenClient;
beforeEach(async () => {
  t = await startTestServer();
  client = await WardenClient.connect(t.socketPath);
  await client.call('Create', { handle: Buffer.from('c') });
});
afterEach(async () => {
  client.close();
  await t.stop();
});

const handle = Buffer.from('c');

describe('WardenClient', () => {
  it('resolves answers and keeps bytes as bytes', async () => {
    expect(await client.call('Echo', { message: 'hi' })).toEqual({ message: 'hi' });
    expect(await client.call('Ping', {})).toEqual({});
    const run = await client.call('Run', { handle, script: 'out ff80; err 00; exit 0' });
    expect(run).toMatchObject({ exit_status: 0, stdout: Buffer.from([0xff, 0x80]), stderr: Buffer.from([0]) });
  });

  it('rejects with a WardenResponseError carrying the server message and its code', async () => {
    const err = await client.call('Info', { handle: Buffer.from('nope') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenResponseError);
    expect(err).toMatchObject({ message: 'unknown handle', request: 'Info', data: 'unknown_handle', code: 'unknown_handle' });
    // the connection is still usable
    expect(await client.call('Echo', { message: 'ok' })).toEqual({ message: 'ok' });
  });

  it('leaves the code undefined where data holds none it knows (an older wardend)', () => {
    expect(new WardenResponseError('Info', { message: 'unknown handle' })).toMatchObject({ data: undefined, code: undefined });
    expect(new WardenResponseError('Info', { message: 'x', data: 'something_else' })).toMatchObject({ data: 'something_else', code: undefined });
  });

  it('matches pipelined answers to their requests', async () => {
    const answers = await Promise.all([
      client.call('Run', { handle, script: 'sleep 30; out 01' }),
      client.call('Echo', { message: 'b' }),
      client.call('Link', { handle, job_id: 42 }).catch((e: Error) => e.message),
      client.call('Run', { handle, script: 'out 03' }),
    ]);
    expect(answers).toEqual([
      expect.objectContaining({ stdout: Buffer.from([1]) }),
      { message: 'b' },
      'no such job',
      expect.objectContaining({ stdout: Buffer.from([3]) }),
    ]);
  });

  it('iterates a stream until exit_status, including exit_status 0', async () => {
    const { job_id } = await client.call('Spawn', { handle, script: 'out 61; err 62; out ff' });
    const seen: StreamResponse[] = [];
    for await (const r of client.stream({ handle, job_id })) seen.push(r);
    expect(seen.slice(0, 3)).toEqual([
      { name: 'stdout', data: Buffer.from('a') },
      { name: 'stderr', data: Buffer.from('b') },
      { name: 'stdout', data: Buffer.from([0xff]) },
    ]);
    expect(seen[3]).toMatchObject({ exit_status: 0 });
    expect(seen).toHaveLength(4);
  });

  it('throws the server error from a stream, and survives leaving a stream early', async () => {
    await expect(async () => {
      for await (const _ of client.stream({ handle, job_id: 77 })) void _;
    }).rejects.toThrow('no such job');
    const { job_id } = await client.call('Spawn', { handle, script: 'out 61; sleep 20; out 62; exit 4' });
    const firsts: StreamResponse[] = [];
    for await (const r of client.stream({ handle, job_id })) {
      firsts.push(r);
      break;
    }
    expect(firsts).toEqual([{ name: 'stdout', data: Buffer.from('a') }]);
    expect(await client.call('Echo', { message: 'after' })).toEqual({ message: 'after' });
  });

  it('says what to do when wardend is not there', async () => {
    const err = await WardenClient.connect(join(t.dir, 'absent.sock')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenConnectionError);
    expect((err as Error).message).toMatch(/cannot connect to wardend at .*absent\.sock \(ENOENT\); is wardend running/);
  });

  it('fails pending requests when the connection breaks', async () => {
    const path = join(t.dir, 'mute.sock');
    const mute = createServer((s) => s.on('data', () => s.destroy()));
    await new Promise<void>((r) => mute.listen(path, r));
    const c = await WardenClient.connect(path);
    await expect(c.call('Ping', {})).rejects.toBeInstanceOf(WardenConnectionError);
    expect(c.closed).toBe(true);
    await expect(c.call('Ping', {})).rejects.toThrow(/closed the connection/);
    await expect(c.call('Ping', {})).rejects.not.toBeInstanceOf(WardenClientClosedError);
    await new Promise((r) => mute.close(r));
  });

  it('tells a request cut short by its own close() apart from a lost wardend', async () => {
    const c = await WardenClient.connect(t.socketPath);
    await c.call('Create', { handle: Buffer.from('w') });
    const link = c.call('Run', { handle: Buffer.from('w'), script: 'sleep 10000' });
    c.close();
    const err = await link.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(WardenClientClosedError);
    // still a connection error to code that only knows those
    expect(err).toBeInstanceOf(WardenConnectionError);
  });

  it('refuses to send a request that cannot be encoded', async () => {
    await expect(client.call('Info', {} as never)).rejects.toThrow(/missing required field handle/);
  });
});

describe('WardenPool', () => {
  it('runs requests on several connections so a slow one does not block the rest', async () => {
    const pool = new WardenPool({ socketPath: t.socketPath, size: 2 });
    const order: string[] = [];
    const slow = pool.call('Run', { handle, script: 'sleep 200' }).then(() => order.push('slow'));
    await pool.call('Echo', { message: 'x' }).then(() => order.push('fast'));
    await slow;
    expect(order).toEqual(['fast', 'slow']);
    expect(t.server.connectionCount).toBe(3); // the test's own client plus two pooled
    pool.close();
  });

  it('never opens more than its size, and queues the rest', async () => {
    const pool = new WardenPool({ socketPath: t.socketPath, size: 1 });
    // What the service saw, in order: with one connection, one request at a time, in turn.
    const seen: string[] = [];
    const run = t.service.run.bind(t.service);
    t.service.run = async (spec) => {
      seen.push(`start ${spec.script}`);
      try {
        return await run(spec);
      } finally {
        seen.push(`end ${spec.script}`);
      }
    };
    const results = await Promise.all([
      pool.call('Run', { handle, script: 'sleep 40; out 01' }),
      pool.call('Run', { handle, script: 'sleep 40; out 02' }),
      pool.call('Echo', { message: 'z' }).then((r) => (seen.push('echo answered'), r)),
    ]);
    expect(seen).toEqual(['start sleep 40; out 01', 'end sleep 40; out 01', 'start sleep 40; out 02', 'end sleep 40; out 02', 'echo answered']);
    expect(results).toEqual([expect.objectContaining({ stdout: Buffer.from([1]) }), expect.objectContaining({ stdout: Buffer.from([2]) }), { message: 'z' }]);
    expect(t.server.connectionCount).toBe(2);
    pool.close();
  });

  it('streams through a pooled connection and gives it back', async () => {
    const pool = new WardenPool({ socketPath: t.socketPath, size: 1 });
    const { job_id } = await pool.call('Spawn', { handle, script: 'out 6869; exit 3' });
    const seen = [];
    for await (const r of pool.stream({ handle, job_id })) seen.push(r);
    expect(seen.at(-1)).toMatchObject({ exit_status: 3 });
    expect(await pool.call('Echo', { message: 'again' })).toEqual({ message: 'again' });
    pool.close();
    await expect(pool.call('Ping', {})).rejects.toThrow(/pool is closed/);
  });
});
