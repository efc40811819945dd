import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRequest, type RequestName, type RequestOf } from '../../../container-host/warden/protocol/index.ts';
import { RawSocket } from './raw-socket.ts';
import { startTestServer } from './setup.ts';

// The service here is an in-memory fake: these tests cover the wire layer only.
let t: Awaited<ReturnType<typeof startTestServer>>;
beforeEach(async () => {
  t = await startTestServer({ maxFrameBytes: 4096 });
});
afterEach(async () => {
  await t.stop();
});

const frame = <K extends RequestName>(name: K, req: RequestOf<K>) => encodeFrame(encodeRequest(name, req));

/** Deterministic bytes (xorshift32) so a failure reproduces exactly. */
function randomBytes(seed: number, n: number): Buffer {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

async function echo(conn: RawSocket, message: string) {
  conn.write(frame('Echo', { message }));
  return conn.next();
}

describe('one bad connection does not disturb the others', () => {
  it('answers each undecodable frame with an ErrorResponse and keeps the connection', async () => {
    const conn = await RawSocket.open(t.socketPath);
    const garbage = Array.from({ length: 50 }, (_, i) => randomBytes(i + 1, 1 + ((i * 37) % 200)));
    // a frame whose payload is truncated protobuf, and one with an unknown type
    garbage.push(encodeRequest('Echo', { message: 'hello' }).subarray(0, 5), Buffer.from('08631200', 'hex'));
    conn.write(Buffer.concat(garbage.map((g) => encodeFrame(g))));
    const answers = [];
    for (let i = 0; i < garbage.length; i++) answers.push(await conn.next());
    // Each is answered exactly once, in order, with an ErrorResponse (type 1, DESIGN §5) naming
    // why: none of these seeds' bytes is a Message; the last two are a truncated Echo and type 99.
    const undecodable = { type: 1, error: { message: expect.stringMatching(/^cannot decode Message: ./), backtrace: [] } };
    expect(answers).toEqual([
      ...Array.from({ length: 50 }, () => undecodable),
      { type: 1, error: { message: 'cannot decode Message: index out of range: 4 + 7 > 5', backtrace: [] } },
      { type: 1, error: { message: 'unknown message type 99 (see the Type numbers in DESIGN §5)', backtrace: [] } },
    ]);
    expect(await echo(conn, 'still here')).toMatchObject({ response: { message: 'still here' } });
    conn.destroy();
  });

  it('says why a frame could not be decoded', async () => {
    const conn = await RawSocket.open(t.socketPath);
    conn.write(encodeFrame(Buffer.from('085d1200', 'hex')));
    expect(await conn.next()).toEqual({
      type: 1,
      error: { message: "cannot decode EchoRequest: missing required 'message'", backtrace: [] },
    });
    conn.write(encodeFrame(Buffer.from('08631200', 'hex')));
    expect(await conn.next()).toMatchObject({ type: 1, error: { message: expect.stringMatching(/unknown message type 99/) } });
    conn.destroy();
  });

  it('closes only the connection that sends an oversize length, malformed framing or a truncated frame', async () => {
    const bystander = await RawSocket.open(t.socketPath);
    expect(await echo(bystander, 'before')).toMatchObject({ response: { message: 'before' } });

    // 1. a length header over the maximum: answered, then closed
    const oversize = await RawSocket.open(t.socketPath);
    oversize.write(frame('Ping', {}));
    oversize.write('99999999\r\n');
    oversize.write(Buffer.alloc(1000, 0x41));
    expect(await oversize.next()).toMatchObject({ type: 91 });
    expect(await oversize.next()).toMatchObject({ type: 1, error: { message: expect.stringMatching(/exceeds the maximum of 4096/) } });
    await oversize.closed;

    // 2. bytes that are not framing at all
    const random = await RawSocket.open(t.socketPath);
    random.write(Buffer.concat([Buffer.from('x'), randomBytes(7, 500)]));
    expect(await random.next()).toMatchObject({ type: 1, error: { message: expect.stringMatching(/expected a decimal length/) } });
    await random.closed;

    // 3. a frame cut short by the end of the connection
    const truncated = await RawSocket.open(t.socketPath);
    truncated.write(frame('Echo', { message: 'whole' }));
    truncated.write(frame('Echo', { message: 'cut short' }).subarray(0, 8));
    truncated.end();
    expect(await truncated.next()).toMatchObject({ response: { message: 'whole' } });
    expect(await truncated.next()).toMatchObject({ type: 1, error: { message: expect.stringMatching(/truncated/) } });
    await truncated.closed;

    // 4. a client that vanishes mid-frame
    const vanished = await RawSocket.open(t.socketPath);
    vanished.write('100\r\nabc');
    vanished.destroy();
    await vanished.closed;

    expect(await echo(bystander, 'after')).toMatchObject({ response: { message: 'after' } });
    const fresh = await RawSocket.open(t.socketPath);
    expect(await echo(fresh, 'new')).toMatchObject({ response: { message: 'new' } });
    fresh.destroy();
    bystander.destroy();
  });

  it('answers a client that half-closes after sending', async () => {
    const conn = await RawSocket.open(t.socketPath);
    conn.write(Buffer.concat([frame('Ping', {}), frame('Echo', { message: 'x' })]));
    conn.end();
    expect(await conn.next()).toMatchObject({ type: 91 });
    expect(await conn.next()).toMatchObject({ type: 93 });
    await conn.closed;
  });
});

describe('pipelining', () => {
  it('answers pipelined requests strictly in order, however long each takes', async () => {
    const conn = await RawSocket.open(t.socketPath);
    conn.write(frame('Create', { handle: Buffer.from('p') }));
    await conn.next();
    const handle = Buffer.from('p');
    conn.write(
      Buffer.concat([
        frame('Run', { handle, script: 'sleep 60; out 01' }),
        frame('Echo', { message: 'fast' }),
        frame('Run', { handle, script: 'sleep 5; out 02' }),
        frame('Info', { handle: Buffer.from('missing') }),
        frame('Run', { handle, script: 'out 03' }),
      ]),
    );
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await conn.next());
    expect(got.map((g) => ('error' in g ? g.error.message : g.name))).toEqual(['Run', 'Echo', 'Run', 'unknown handle', 'Run']);
    expect(got.filter((g) => 'response' in g && g.name === 'Run').map((g) => (g as unknown as { response: { stdout: Buffer } }).response.stdout)).toEqual([
      Buffer.from([1]),
      Buffer.from([2]),
      Buffer.from([3]),
    ]);
    conn.destroy();
  });

  it('keeps order across many requests written byte by byte', async () => {
    const conn = await RawSocket.open(t.socketPath);
    const bytes = Buffer.concat(Array.from({ length: 200 }, (_, i) => frame('Echo', { message: `m${i}` })));
    for (let i = 0; i < bytes.length; i += 7) conn.write(bytes.subarray(i, i + 7));
    for (let i = 0; i < 200; i++) expect(await conn.next()).toMatchObject({ response: { message: `m${i}` } });
    conn.destroy();
  });

  it('serves connections concurrently: a slow request on one does not hold up another', async () => {
    const slow = await RawSocket.open(t.socketPath);
    const fast = await RawSocket.open(t.socketPath);
    slow.write(frame('Create', { handle: Buffer.from('s') }));
    await slow.next();
    slow.write(frame('Run', { handle: Buffer.from('s'), script: 'sleep 300' }));
    const order: string[] = [];
    const slowDone = slow.next().then(() => order.push('slow'));
    await echo(fast, 'x').then(() => order.push('fast'));
    await slowDone;
    expect(order).toEqual(['fast', 'slow']);
    slow.destroy();
    fast.destroy();
  });
});

describe('handle references', () => {
  it('retains each handle a connection names once, and releases it when the connection closes', async () => {
    const conn = await RawSocket.open(t.socketPath);
    conn.write(frame('Create', { handle: Buffer.from('r1') }));
    await conn.next();
    conn.write(frame('Create', {}));
    await conn.next();
    conn.write(frame('Info', { handle: Buffer.from('r1') }));
    await conn.next();
    conn.write(frame('Create', { handle: Buffer.from('gone') }));
    await conn.next();
    conn.write(frame('Destroy', { handle: Buffer.from('gone') }));
    await conn.next();
    expect(t.service.refs).toEqual(['+r1', '+h1', '+gone', '-gone']);
    conn.destroy();
    await conn.closed;
    await new Promise((r) => setTimeout(r, 20));
    expect(t.service.refs.slice(4).sort()).toEqual(['-h1', '-r1']);
  });

  // Connections are half-open (a client may shut its write side and still read answers), so a
  // vanished client is noticed when the stream next writes to it.
  it('aborts a running stream once its client is gone', async () => {
    const conn = await RawSocket.open(t.socketPath);
    conn.write(frame('Create', { handle: Buffer.from('st') }));
    await conn.next();
    conn.write(frame('Spawn', { handle: Buffer.from('st'), script: 'out 61; sleep 50; out 62; sleep 10000' }));
    await conn.next();
    conn.write(frame('Stream', { handle: Buffer.from('st'), job_id: 1 }));
    expect(await conn.next()).toMatchObject({ response: { name: 'stdout' } });
    conn.destroy();
    await conn.closed;
    await new Promise((r) => setTimeout(r, 150));
    expect(t.service.streamSignals[0].aborted).toBe(true);
  });
});
