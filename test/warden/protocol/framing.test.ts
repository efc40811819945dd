import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameTooLargeError, MalformedFrameError } from '../../../container-host/warden/protocol/index.ts';

const frames = [Buffer.from('abc'), Buffer.alloc(0), Buffer.from([0x0d, 0x0a, 0x31, 0x0d]), Buffer.alloc(300, 7)];
const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));

describe('FrameDecoder', () => {
  it('decodes coalesced frames from one chunk', () => {
    expect(new FrameDecoder().push(stream)).toEqual(frames);
  });

  it('decodes frames split at every possible byte', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      expect([...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))]).toEqual(frames);
      expect(d.idle).toBe(true);
    }
  });

  it('decodes a stream fed one byte at a time', () => {
    const d = new FrameDecoder();
    const out: Buffer[] = [];
    for (const byte of stream) out.push(...d.push(Buffer.of(byte)));
    expect(out).toEqual(frames);
  });

  it('is not idle while a frame is half-read', () => {
    const d = new FrameDecoder();
    d.push(Buffer.from('3\r\nab'));
    expect(d.idle).toBe(false);
  });

  it('refuses a length over the maximum as soon as the header shows it', () => {
    const d = new FrameDecoder({ maxFrameBytes: 100 });
    expect(d.push(encodeFrame(Buffer.alloc(100)))).toHaveLength(1);
    expect(() => d.push(Buffer.from('1000'))).toThrow(FrameTooLargeError);
    // once out of step, it stays failed
    expect(() => d.push(encodeFrame(Buffer.from('x')))).toThrow(FrameTooLargeError);
    expect(() => new FrameDecoder().push(Buffer.from('99999999999999999999'))).toThrow(/exceeds the maximum/);
  });

  it('names the length header as the client sent it, not the digits read when it was refused', () => {
    expect(() => new FrameDecoder().push(Buffer.from('1000000000000\r\n'))).toThrow(/^frame length 1000000000000 exceeds the maximum of 67108864 bytes/);
    // the header is still arriving: say it is at least what came
    expect(() => new FrameDecoder({ maxFrameBytes: 100 }).push(Buffer.from('123456'))).toThrow(/^frame length of at least 123456 exceeds/);
    // a header of hundreds of digits is quoted up to 32 of them
    expect(() => new FrameDecoder().push(Buffer.from(`${'9'.repeat(200)}\r\n`))).toThrow(`frame length of at least ${'9'.repeat(32)} exceeds`);
  });

  it('refuses a header that is not a decimal length', () => {
    expect(() => new FrameDecoder().push(Buffer.from('x\r\n'))).toThrow(MalformedFrameError);
    expect(() => new FrameDecoder().push(Buffer.from('\r\n'))).toThrow(MalformedFrameError);
    expect(() => new FrameDecoder().push(Buffer.from('-1\r\n'))).toThrow(MalformedFrameError);
    expect(() => new FrameDecoder().push(Buffer.from('3\rx'))).toThrow(MalformedFrameError);
  });

  it('refuses a payload that is not followed by CR LF', () => {
    expect(() => new FrameDecoder().push(Buffer.from('2\r\nabc\r\n'))).toThrow(/not followed by CR LF/);
  });

  it('encodeFrame refuses a payload over the maximum', () => {
    expect(() => encodeFrame(Buffer.alloc(11), 10)).toThrow(FrameTooLargeError);
  });
});
