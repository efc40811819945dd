import { describe, expect, it } from 'vitest';
import { decodeRequest, decodeResponse, encodeFrame, encodeRequest, encodeResponse, FrameDecoder } from '../../../container-host/warden/protocol/index.ts';

/** The golden frames of DESIGN.md §5, produced by the original warden client library. */
const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');
const GOLDEN = {
  echo: hex('38 0d 0a 08 5d 12 04 0a 02 68 69 0d 0a'),
  ping: hex('34 0d 0a 08 5b 12 00 0d 0a'),
  spawn: hex('31 37 0d 0a 08 15 12 0d 0a 02 68 31 12 07 65 63 68 6f 20 68 69 0d 0a'),
  streamExit0: hex('36 0d 0a 08 18 12 02 18 00 0d 0a'),
};

function unframe(frame: Buffer): Buffer {
  const frames = new FrameDecoder().push(frame);
  expect(frames).toHaveLength(1);
  return frames[0];
}

describe('golden frames (DESIGN §5), byte for byte', () => {
  it('EchoRequest{message:"hi"}', () => {
    expect(encodeFrame(encodeRequest('Echo', { message: 'hi' }))).toEqual(GOLDEN.echo);
    expect(decodeRequest(unframe(GOLDEN.echo))).toEqual({ name: 'Echo', request: { message: 'hi' } });
  });

  it('PingRequest{}', () => {
    expect(encodeFrame(encodeRequest('Ping', {}))).toEqual(GOLDEN.ping);
    expect(decodeRequest(unframe(GOLDEN.ping))).toEqual({ name: 'Ping', request: {} });
  });

  it('SpawnRequest{handle:"h1", script:"echo hi"} leaves unset defaults off the wire', () => {
    expect(encodeFrame(encodeRequest('Spawn', { handle: Buffer.from('h1'), script: 'echo hi' }))).toEqual(GOLDEN.spawn);
    const decoded = decodeRequest(unframe(GOLDEN.spawn));
    expect(decoded).toEqual({ name: 'Spawn', request: { handle: Buffer.from('h1'), script: 'echo hi' } });
    expect(Object.keys(decoded.request)).toEqual(['handle', 'script']);
  });

  it('StreamResponse{exit_status:0} writes the zero (18 00)', () => {
    expect(encodeFrame(encodeResponse('Stream', { exit_status: 0 }))).toEqual(GOLDEN.streamExit0);
    expect(decodeResponse(unframe(GOLDEN.streamExit0))).toEqual({
      type: 24,
      name: 'Stream',
      response: { exit_status: 0 },
    });
  });
});
