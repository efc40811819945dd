import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatResponse, parseRequestArgs, RequestArgsError, runShell, tokenize, toJson } from '../../../container-host/warden/client/shell/index.ts';
import { startTestServer } from '../server/setup.ts';

describe('request arguments', () => {
  it('builds requests from §5 names and --field value pairs', () => {
    expect(parseRequestArgs(['create', '--grace_time', '30'])).toEqual({ name: 'Create', request: { grace_time: 30 } });
    expect(parseRequestArgs(['run', '--handle', 'H', '--script', 'id', '--privileged'])).toEqual({
      name: 'Run',
      request: { handle: 'H', script: 'id', privileged: true },
    });
    expect(parseRequestArgs(['limit-memory', '--handle=h', '--limit-in-bytes', '1048576']).request).toEqual({
      handle: 'h',
      limit_in_bytes: 1048576,
    });
    expect(parseRequestArgs(['net_out', '--handle', 'h', '--protocol', 'udp', '--log', 'false']).request).toEqual({
      handle: 'h',
      protocol: 1,
      log: false,
    });
    expect(parseRequestArgs(['create', '--bind_mounts', '/a:/b:rw', '--bind_mounts', '{"src_path":"/c","dst_path":"/d","mode":"RO"}']).request).toEqual({
      bind_mounts: [
        { src_path: '/a', dst_path: '/b', mode: 1 },
        { src_path: '/c', dst_path: '/d', mode: 0 },
      ],
    });
    expect(parseRequestArgs(['spawn', '--handle', 'h', '--script', 'x', '--rlimits', 'nofile=64,nproc=8']).request).toMatchObject({
      rlimits: { nofile: 64, nproc: 8 },
    });
  });

  it('says what is wrong with a command line', () => {
    expect(() => parseRequestArgs(['nope'])).toThrow(/unknown request "nope"; one of: create, stop/);
    expect(() => parseRequestArgs(['info'])).toThrow(/info needs --handle/);
    expect(() => parseRequestArgs(['create', '--grace_time', '-1'])).toThrow(/non-negative integer/);
    expect(() => parseRequestArgs(['create', '--bogus', '1'])).toThrow(RequestArgsError);
    expect(() => parseRequestArgs(['net_out', '--handle', 'h', '--protocol', 'sctp'])).toThrow(/TCP, UDP, ICMP, ALL/);
    expect(() => parseRequestArgs(['spawn', '--handle', 'h', '--script', 'x', '--rlimits', 'bogus=1'])).toThrow(/has no bogus/);
  });

  it('splits shell lines like a shell', () => {
    expect(tokenize(`run --handle h --script 'echo "a b"' --log_tag "x \\"y\\"" z\\ w`)).toEqual([
      'run',
      '--handle',
      'h',
      '--script',
      'echo "a b"',
      '--log_tag',
      'x "y"',
      'z w',
    ]);
    expect(tokenize("echo --message ''")).toEqual(['echo', '--message', '']);
    expect(() => tokenize("echo 'open")).toThrow(/unterminated/);
  });

  it('prints bytes as text when they are UTF-8 and as hex/base64 otherwise', () => {
    expect(formatResponse({ exit_status: 0, stdout: Buffer.from('hi\n'), stderr: Buffer.from([0xff]) })).toBe('exit_status : 0\nstdout      : hi\nstderr      : 0xff');
    expect(formatResponse({})).toBe('ok');
    expect(toJson({ a: Buffer.from('x'), b: Buffer.from([0xff]) })).toBe('{"a":"x","b":{"base64":"/w=="}}');
  });
});

// The server runs the in-memory fake service: these tests cover the CLI and the wire only.
describe('dropwarden warden against a running server', () => {
  let t: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.stop();
  });

  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['bin/dropwarden.js', 'warden', '--socket', t.socketPath, ...args], {
      encoding: 'buffer',
    });

  it('sends one request and prints the answer; a server error exits 1 with its message', async () => {
    const created = await cli('create', '--handle', 'cli1', '--grace_time', '30');
    expect(created.stdout.toString()).toBe('handle : cli1\n');
    const json = await cli('--json', 'run', '--handle', 'cli1', '--script', 'out 6869; exit 2');
    expect(JSON.parse(json.stdout.toString())).toMatchObject({ exit_status: 2, stdout: 'hi' });
    const failed = await cli('info', '--handle', 'missing').catch((e: { code: number; stderr: Buffer }) => e);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: Buffer }).stderr.toString()).toBe('dropwarden: unknown handle\n');
  });

  it('streams output live as raw bytes, then the exit status', async () => {
    const { job_id } = await (await import('../../../container-host/warden/client/client.ts')).WardenClient.connect(t.socketPath).then(async (c) => {
      await c.call('Create', { handle: Buffer.from('cli2') });
      const r = await c.call('Spawn', { handle: Buffer.from('cli2'), script: 'out ff0a; err 65; exit 0' });
      c.close();
      return r;
    });
    const { stdout, stderr } = await cli('stream', '--handle', 'cli2', '--job_id', String(job_id));
    expect(stdout).toEqual(Buffer.from([0xff, 0x0a]));
    expect(stderr.toString()).toBe('eexit_status : 0\n');
  });

  it('runs an interactive session line by line and keeps going after errors', async () => {
    const input = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks: string[] = [];
    const errs: string[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c.toString()));
    stderr.on('data', (c: Buffer) => errs.push(c.toString()));
    const done = runShell(t.socketPath, { input, stdout, stderr, json: false, interactive: false });
    input.end(["echo --message 'hello there'", 'info --handle nope', 'bogus', 'help create', 'ping', 'quit', 'ping'].join('\n'));
    await done;
    expect(chunks.join('')).toBe(
      'message : hello there\n' + 'create --bind_mounts <BindMount…> --grace_time <uint32> --handle <bytes> --network <string> --rootfs <string>\n' + 'ok\n',
    );
    expect(errs.join('')).toMatch(/^error: unknown handle\nerror: unknown request "bogus"/);
  });
});
