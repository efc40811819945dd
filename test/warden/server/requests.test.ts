import { stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRequest, REQUEST_NAMES, type RequestName, type RequestOf } from '../../../container-host/warden/protocol/index.ts';
import { RawSocket } from './raw-socket.ts';
import { startTestServer } from './setup.ts';

// The service here is an in-memory fake: these tests cover the wire layer only.
let t: Awaited<ReturnType<typeof startTestServer>>;
let conn: RawSocket;
beforeEach(async () => {
  t = await startTestServer();
  conn = await RawSocket.open(t.socketPath);
});
afterEach(async () => {
  conn.destroy();
  await t.stop();
});

const frame = <K extends RequestName>(name: K, req: RequestOf<K>) => encodeFrame(encodeRequest(name, req));
const h = (s: string) => Buffer.from(s);
/** An ErrorResponse as decoded from the wire: the original text, and its code in `data` (DESIGN §5). */
const err = (message: string, data: string) => ({ type: 1, error: { message, backtrace: [], data } });

describe('wardend answers every request type of DESIGN §5', () => {
  it('creates a socket with mode 0660', async () => {
    expect((await stat(t.socketPath)).mode & 0o777).toBe(0o660);
  });

  it('serves a container lifecycle', async () => {
    conn.write(frame('Create', { handle: h('c1'), grace_time: 30 }));
    expect(await conn.next()).toEqual({ type: 11, name: 'Create', response: { handle: h('c1') } });
    conn.write(frame('Info', { handle: h('c1') }));
    expect(await conn.next()).toEqual({
      type: 14,
      name: 'Info',
      response: { state: 'active', events: [], container_path: '/depot/c1', job_ids: [] },
    });
    conn.write(frame('List', {}));
    expect(await conn.next()).toMatchObject({ response: { handles: [h('c1')] } });
    conn.write(frame('Run', { handle: h('c1'), script: 'out ff00fe; err 80; exit 0' }));
    expect(await conn.next()).toMatchObject({
      type: 23,
      response: { exit_status: 0, stdout: Buffer.from([0xff, 0, 0xfe]), stderr: Buffer.from([0x80]) },
    });
    conn.write(frame('Spawn', { handle: h('c1'), script: 'exit 7' }));
    const spawned = await conn.next();
    expect(spawned).toEqual({ type: 21, name: 'Spawn', response: { job_id: 2 } });
    conn.write(frame('Link', { handle: h('c1'), job_id: 2 }));
    expect(await conn.next()).toMatchObject({ type: 22, response: { exit_status: 7 } });
    conn.write(frame('Link', { handle: h('c1'), job_id: 2 }));
    expect(await conn.next()).toEqual(err('no such job', 'no_such_job'));
    conn.write(frame('LimitMemory', { handle: h('c1'), limit_in_bytes: 2 ** 40 }));
    expect(await conn.next()).toEqual({ type: 51, name: 'LimitMemory', response: { limit_in_bytes: 2 ** 40 } });
    conn.write(frame('LimitCpu', { handle: h('c1') }));
    expect(await conn.next()).toEqual({ type: 54, name: 'LimitCpu', response: { limit_in_shares: 1024 } });
    conn.write(frame('CopyIn', { handle: h('c1'), src_path: '/a', dst_path: '/b' }));
    expect(await conn.next()).toEqual({ type: 41, name: 'CopyIn', response: {} });
    conn.write(frame('CopyOut', { handle: h('c1'), src_path: '/a', dst_path: '/b', owner: 'root' }));
    expect(await conn.next()).toEqual({ type: 42, name: 'CopyOut', response: {} });
    conn.write(frame('Stop', { handle: h('c1'), kill: true }));
    expect(await conn.next()).toEqual({ type: 12, name: 'Stop', response: {} });
    conn.write(frame('Destroy', { handle: h('c1') }));
    expect(await conn.next()).toEqual({ type: 13, name: 'Destroy', response: {} });
    conn.write(frame('Info', { handle: h('c1') }));
    expect(await conn.next()).toEqual(err('unknown handle', 'unknown_handle'));
  });

  it('streams output frames, then one with exit_status 0 written as 18 00', async () => {
    conn.write(frame('Create', { handle: h('s') }));
    await conn.next();
    conn.write(frame('Spawn', { handle: h('s'), script: 'out 6869; err ff; out 0a' }));
    await conn.next();
    conn.write(frame('Stream', { handle: h('s'), job_id: 1 }));
    expect(await conn.next()).toEqual({ type: 24, name: 'Stream', response: { name: 'stdout', data: h('hi') } });
    expect(await conn.next()).toEqual({ type: 24, name: 'Stream', response: { name: 'stderr', data: Buffer.from([0xff]) } });
    expect(await conn.next()).toMatchObject({ response: { name: 'stdout', data: h('\n') } });
    const last = await conn.nextPayload();
    // envelope 08 18 12 .. | 18 00 (exit_status) 22 .. (info)
    expect(last!.subarray(4, 6)).toEqual(Buffer.from([0x18, 0x00]));
    conn.write(frame('Ping', {}));
    expect(await conn.next()).toEqual({ type: 91, name: 'Ping', response: {} });
  });

  it('answers every type, with a clear error where the service does not support it yet', async () => {
    conn.write(frame('Create', { handle: h('x') }));
    await conn.next();
    const requests: { [K in RequestName]: RequestOf<K> } = {
      Create: {},
      Stop: { handle: h('x') },
      Destroy: { handle: h('nope') },
      Info: { handle: h('x') },
      Spawn: { handle: h('x'), script: '' },
      Link: { handle: h('x'), job_id: 99 },
      Run: { handle: h('x'), script: 'exit 1' },
      Stream: { handle: h('x'), job_id: 1 },
      NetIn: { handle: h('x'), container_port: 8080 },
      NetOut: { handle: h('x'), network: '10.0.0.0/8' },
      CopyIn: { handle: h('x'), src_path: 'a', dst_path: 'b' },
      CopyOut: { handle: h('x'), src_path: 'a', dst_path: 'b' },
      LimitMemory: { handle: h('x') },
      LimitDisk: { handle: h('x'), byte_limit: 1 },
      LimitBandwidth: { handle: h('x'), rate: 1, burst: 1 },
      LimitCpu: { handle: h('x'), limit_in_shares: 10 },
      Ping: {},
      List: {},
      Echo: { message: 'é' },
    };
    conn.write(Buffer.concat(REQUEST_NAMES.map((n) => frame(n, requests[n] as never))));
    const answers = [];
    for (const _ of REQUEST_NAMES) answers.push(await conn.next());
    expect(answers.map((a) => ('error' in a ? `${a.type}:${a.error.message}` : a.type))).toEqual([
      11,
      12,
      '1:unknown handle',
      14,
      21,
      '1:no such job',
      23,
      24,
      '1:not supported yet',
      '1:not supported yet',
      41,
      42,
      51,
      '1:not supported yet',
      '1:not supported yet',
      54,
      91,
      92,
      93,
    ]);
    expect(answers.at(-1)).toMatchObject({ response: { message: 'é' } });
  });

  it('passes the original error strings through verbatim', async () => {
    conn.write(frame('Create', { handle: h('dup') }));
    await conn.next();
    conn.write(frame('Create', { handle: h('dup') }));
    expect(await conn.next()).toEqual(err('container with handle: dup already exists.', 'handle_exists'));
  });
});
