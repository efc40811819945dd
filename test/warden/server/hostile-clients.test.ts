/**
 * wardend's memory and connections under hostile clients, over a real unix socket: the request
 * bytes all connections hold together are capped (a connection that would go over is answered
 * and closed, the others are served), and connections that hold no container and send nothing
 * are closed after the idle timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeRequest } from '../../../container-host/warden/protocol/index.ts';
import { RawSocket } from './raw-socket.ts';
import { startTestServer } from './setup.ts';

let t: Awaited<ReturnType<typeof startTestServer>> | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const echoFrame = (message: string) => encodeFrame(encodeRequest('Echo', { message }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with what `p` gives, or with 'timeout' after `ms`: a test that must not hang on it. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);
}

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

describe('the request bytes held across connections', () => {
  it('are capped: the connection that would go over is answered and closed, the others are served', async () => {
    // one Echo of just under 1 MB: the header says how long, and half the payload is sent
    const big = encodeRequest('Echo', { message: 'a'.repeat(999_000) });
    const header = Buffer.from(`${big.length}\r\n`);
    t = await startTestServer({ maxFrameBytes: 1_000_000, maxBufferedBytes: 2_500_000, idleTimeoutMs: 0 });

    const holders = await Promise.all([RawSocket.open(t.socketPath), RawSocket.open(t.socketPath)]);
    for (const h of holders) h.write(Buffer.concat([header, big.subarray(0, 500_000)]));
    await waitFor(() => t!.server.budget.used === 2 * big.length);

    // a third partial frame of the same size would hold 3 MB: refused at its header
    const third = await RawSocket.open(t.socketPath);
    third.write(Buffer.concat([header, big.subarray(0, 1000)]));
    const answer = await within(third.next(), 2000);
    expect(answer).toMatchObject({ type: 1, error: { message: expect.stringMatching(/wardend is busy: a frame of \d+ bytes .* over maxBufferedBytes \(2500000\)/) } });
    expect(await within(third.closed, 2000)).toBeUndefined();
    expect(t.server.budget.used).toBe(2 * big.length);

    // small requests still fit, and the holders are served once their frames are complete
    const bystander = await RawSocket.open(t.socketPath);
    bystander.write(echoFrame('small'));
    expect(await within(bystander.next(), 2000)).toMatchObject({ response: { message: 'small' } });
    holders[0].write(Buffer.concat([big.subarray(500_000), Buffer.from('\r\n')]));
    expect(await within(holders[0].next(), 2000)).toMatchObject({ type: 93 });
    await waitFor(() => t!.server.budget.used === big.length);

    // a closed connection gives its partial frame back
    holders[1].destroy();
    await waitFor(() => t!.server.budget.used === 0);
    const later = await RawSocket.open(t.socketPath);
    later.write(encodeFrame(big));
    expect(await within(later.next(), 2000)).toMatchObject({ type: 93 });
    expect(t.server.budget.used).toBe(0);
    for (const c of [holders[0], bystander, later]) c.destroy();
  });
});

describe('idle connections', () => {
  it('are closed when they hold no container; one that references a container, or keeps talking, stays', async () => {
    t = await startTestServer({ idleTimeoutMs: 300 });
    const silent = await RawSocket.open(t.socketPath);
    const halfFrame = await RawSocket.open(t.socketPath);
    halfFrame.write(Buffer.concat([Buffer.from('100\r\n'), Buffer.alloc(10)]));
    const holder = await RawSocket.open(t.socketPath);
    holder.write(encodeFrame(encodeRequest('Create', { handle: Buffer.from('kept') })));
    expect(await holder.next()).toMatchObject({ type: 11 });
    const chatty = await RawSocket.open(t.socketPath);

    let stillOpen = true;
    void chatty.closed.then(() => (stillOpen = false));
    for (let i = 0; i < 10; i++) {
      chatty.write(echoFrame(`m${i}`));
      expect(await chatty.next()).toMatchObject({ response: { message: `m${i}` } });
      await sleep(100);
    }
    // a second after the silent ones came, they are gone; the others are not
    expect(await within(silent.closed, 1000)).toBeUndefined();
    expect(await within(halfFrame.closed, 1000)).toBeUndefined();
    expect(stillOpen).toBe(true);
    holder.write(echoFrame('still here'));
    expect(await holder.next()).toMatchObject({ response: { message: 'still here' } });
    expect(t.logs.filter((l) => /idle for 300 ms/.test(l))).toHaveLength(2);
    expect(t.logs).toContainEqual(expect.stringMatching(/idle for 300 ms in the middle of a frame, holding no container/));
    expect(t.server.connectionCount).toBe(2);
    expect(t.server.budget.used).toBe(0);
    holder.destroy();
    chatty.destroy();
  });
});
