import { describe, expect, it } from 'vitest';
import {
  decodeRequest,
  decodeResponse,
  encodeErrorResponse,
  encodeRequest,
  encodeResponse,
  MessageDecodeError,
  MessageEncodeError,
  parseRequestName,
  REQUEST_NAMES,
  UnknownMessageTypeError,
} from '../../../container-host/warden/protocol/index.ts';

const NOT_UTF8 = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 0x0a]);

describe('presence (proto2)', () => {
  it('encodes a present zero and a present false, and omits absent fields', () => {
    expect(encodeResponse('Link', { exit_status: 0 }).subarray(-2)).toEqual(Buffer.from([0x08, 0x00]));
    const stop = decodeRequest(encodeRequest('Stop', { handle: Buffer.from('h'), kill: false }));
    expect(stop.request).toEqual({ handle: Buffer.from('h'), kill: false });
    expect(Object.hasOwn(stop.request, 'background')).toBe(false);
  });

  it('a stream chunk without exit_status decodes without one', () => {
    const d = decodeResponse(encodeResponse('Stream', { name: 'stdout', data: Buffer.from('x') }));
    expect(d).toEqual({ type: 24, name: 'Stream', response: { name: 'stdout', data: Buffer.from('x') } });
  });

  it('writes required response fields even when the caller leaves them out', () => {
    const payload = encodeResponse('NetIn', {} as never);
    expect(decodeResponse(payload)).toEqual({ type: 31, name: 'NetIn', response: { host_port: 0, container_port: 0 } });
    expect(decodeResponse(encodeResponse('Spawn', {} as never))).toMatchObject({ response: { job_id: 0 } });
  });

  it('refuses to encode a request without its required fields', () => {
    expect(() => encodeRequest('Info', {} as never)).toThrow(MessageEncodeError);
    expect(() => encodeRequest('Info', {} as never)).toThrow(/missing required field handle/);
  });
});

describe('bytes stay bytes', () => {
  it('round-trips non-UTF-8 output and handles unchanged', () => {
    const res = decodeResponse(encodeResponse('Run', { exit_status: 3, stdout: NOT_UTF8, stderr: Buffer.from([0xef, 0xbf]) }));
    expect(res).toEqual({
      type: 23,
      name: 'Run',
      response: { exit_status: 3, stdout: NOT_UTF8, stderr: Buffer.from([0xef, 0xbf]) },
    });
    const req = decodeRequest(encodeRequest('Destroy', { handle: NOT_UTF8 }));
    expect(req.request).toEqual({ handle: NOT_UTF8 });
    const list = decodeResponse(encodeResponse('List', { handles: [NOT_UTF8, Buffer.from('b')] }));
    expect(list).toMatchObject({ response: { handles: [NOT_UTF8, Buffer.from('b')] } });
  });

  it('takes a string for a bytes field as its UTF-8 bytes (not base64)', () => {
    expect(decodeRequest(encodeRequest('Info', { handle: 'héllo' as never })).request).toEqual({
      handle: Buffer.from('héllo', 'utf8'),
    });
  });
});

describe('every request type', () => {
  it('has a request and a response message and parses its CLI spelling', () => {
    expect(REQUEST_NAMES).toHaveLength(19);
    for (const name of REQUEST_NAMES) {
      expect(parseRequestName(name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase())).toBe(name);
    }
    expect(parseRequestName('net-in')).toBe('NetIn');
    expect(parseRequestName('nope')).toBeUndefined();
  });

  it('round-trips nested messages, enums and u64 values', () => {
    const create = {
      bind_mounts: [{ src_path: '/a', dst_path: '/b', mode: 1 }],
      grace_time: 30,
      handle: Buffer.from('c1'),
    };
    expect(decodeRequest(encodeRequest('Create', create)).request).toEqual(create);
    const info = {
      state: 'active',
      events: ['out of memory'],
      container_path: '/depot/c1',
      memory_stat: { cache: 1, hierarchical_memory_limit: 9223372036854771712, total_unevictable: 0 },
      cpu_stat: { usage: 2 ** 40, user: 1, system: 2 },
      job_ids: [1, 2 ** 33],
    };
    expect(decodeResponse(encodeResponse('Info', info))).toEqual({ type: 14, name: 'Info', response: info });
    const rl = { handle: Buffer.from('c1'), script: 'ulimit -n', rlimits: { nofile: 1024, as: 2 ** 40 } };
    expect(decodeRequest(encodeRequest('Run', rl)).request).toEqual(rl);
  });

  it('writes InfoResponse.job_ids unpacked, as the original did', () => {
    const payload = encodeResponse('Info', { job_ids: [1, 2] });
    // envelope: 08 0e 12 06 | e0 02 01 e0 02 02
    expect(payload.subarray(-6)).toEqual(Buffer.from('e00201e00202', 'hex'));
  });
});

describe('errors', () => {
  it('encodes and decodes an ErrorResponse as type 1', () => {
    const bytes = encodeErrorResponse({ message: 'unknown handle', data: 'd', backtrace: ['a', 'b'] });
    expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0x08, 0x01]));
    expect(decodeResponse(bytes)).toEqual({ type: 1, error: { message: 'unknown handle', data: 'd', backtrace: ['a', 'b'] } });
  });

  it('says what is wrong with an undecodable payload', () => {
    expect(() => decodeRequest(Buffer.from('085d1200', 'hex'))).toThrow(new MessageDecodeError('EchoRequest', "missing required 'message'"));
    expect(() => decodeRequest(Buffer.from('ffffff', 'hex'))).toThrow(MessageDecodeError);
    expect(() => decodeRequest(Buffer.from('08051200', 'hex'))).toThrow(UnknownMessageTypeError);
    expect(() => decodeRequest(Buffer.from('08011200', 'hex'))).toThrow(/unknown message type 1/);
  });

  it('refuses unknown fields and wrong types instead of dropping them', () => {
    expect(() => encodeRequest('Create', { graceTime: 3 } as never)).toThrow(/unknown field graceTime/);
    expect(() => encodeRequest('Create', { grace_time: '3' } as never)).toThrow(/grace_time: integer expected/);
  });
});
