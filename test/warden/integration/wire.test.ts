/**
 * Issue 5 end to end: a real wardend (child process: `dropwarden wardend --config …`, the Linux
 * backend behind it) driven over its unix socket by the real client, for every request type,
 * with the original error strings as clients see them.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenClient } from '../../../container-host/warden/client/client.ts';
import { WardenResponseError } from '../../../container-host/warden/client/errors.ts';
import type { WardenErrorCode } from '../../../contracts/warden-errors.ts';
import type { RequestName, RequestOf, StreamResponse } from '../../../container-host/warden/protocol/index.ts';
import { skipReason, waitFor } from '../linux/helpers.ts';
import { WardendProcess } from './wardend.ts';

const h = (s: string): Buffer => Buffer.from(s, 'latin1');
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41, 0xc3, 0x28, 0x0a]);
/** The bytes above as a bash printf format (octal escapes: no UTF-8 anywhere). */
const BINARY_PRINTF = [...BINARY].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');

/** The refusal's message (the original text); its code (DESIGN §5) must be `code`, in the frame's `data`. */
async function refused<K extends Exclude<RequestName, 'Stream'>>(c: WardenClient, name: K, req: RequestOf<K>, code: WardenErrorCode): Promise<string> {
  try {
    await c.call(name, req);
  } catch (e) {
    expect(e).toBeInstanceOf(WardenResponseError);
    expect((e as WardenResponseError).data).toBe(code);
    expect((e as WardenResponseError).code).toBe(code);
    return (e as Error).message;
  }
  throw new Error(`${name} was expected to fail`);
}

describe.skipIf(skipReason)('wardend over the wire (real daemon, real client)', () => {
  let d: WardendProcess;
  let c: WardenClient;
  beforeAll(async () => {
    d = new WardendProcess('wire');
    await d.start();
    c = await d.client();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('answers ping and echo', async () => {
    expect(await c.call('Ping', {})).toEqual({});
    expect(await c.call('Echo', { message: 'héllo' })).toEqual({ message: 'héllo' });
  });

  it('creates with bind mounts and a handle, lists, describes, and refuses a duplicate handle', async () => {
    const ro = join(d.dir, 'ro');
    const rw = join(d.dir, 'rw');
    mkdirSync(ro);
    mkdirSync(rw, { mode: 0o777 });
    writeFileSync(join(ro, 'in.txt'), 'from the host\n');
    const created = await c.call('Create', {
      handle: h('wire-1'),
      grace_time: 60,
      bind_mounts: [
        { src_path: ro, dst_path: '/mnt/ro', mode: 0 },
        { src_path: rw, dst_path: '/mnt/rw', mode: 1 },
      ],
    });
    expect(created.handle).toEqual(h('wire-1'));
    expect(await refused(c, 'Create', { handle: h('wire-1') }, 'handle_exists')).toBe('container with handle: wire-1 already exists.');
    expect((await c.call('List', {})).handles).toContainEqual(h('wire-1'));

    const info = await c.call('Info', { handle: h('wire-1') });
    expect(info).toMatchObject({ state: 'active', events: [], container_path: join(d.backend.depotDir, 'wire-1') });
    expect(info.memory_stat?.hierarchical_memory_limit).toBeGreaterThan(0);
    expect(info.cpu_stat?.usage).toBeGreaterThanOrEqual(0);

    const r = await c.call('Run', {
      handle: h('wire-1'),
      script: 'cat /mnt/ro/in.txt; echo written > /mnt/rw/out.txt; echo nope > /mnt/ro/x 2>/dev/null || echo read-only',
      privileged: true,
    });
    expect(r.exit_status).toBe(0);
    expect(r.stdout?.toString()).toBe('from the host\nread-only\n');
    expect(readFileSync(join(rw, 'out.txt'), 'utf8')).toBe('written\n');
  });

  it('runs a job with exit status and non-UTF-8 stdout and stderr', async () => {
    const r = await c.call('Run', { handle: h('wire-1'), script: `printf '${BINARY_PRINTF}'; printf '${BINARY_PRINTF}' >&2; exit 3` });
    expect(r.exit_status).toBe(3);
    expect(r.stdout).toEqual(BINARY);
    expect(r.stderr).toEqual(BINARY);
    expect(r.info?.state).toBe('active');
    // unprivileged by default, with rlimits
    const id = await c.call('Run', { handle: h('wire-1'), script: 'id -u; ulimit -n', rlimits: { nofile: 77 } });
    const [uid, nofile] = id.stdout!.toString().trim().split('\n');
    expect(Number(uid)).toBeGreaterThan(0);
    expect(nofile).toBe('77');
  });

  it('spawns, links (once: then no such job), and lists running jobs in info', async () => {
    const { job_id } = await c.call('Spawn', { handle: h('wire-1'), script: `sleep 0.3; printf '${BINARY_PRINTF}'; exit 4` });
    expect((await c.call('Info', { handle: h('wire-1') })).job_ids).toContain(job_id);
    const linked = await c.call('Link', { handle: h('wire-1'), job_id });
    expect(linked).toMatchObject({ exit_status: 4, stdout: BINARY });
    expect(await refused(c, 'Link', { handle: h('wire-1'), job_id }, 'no_such_job')).toBe('no such job');
    expect(await refused(c, 'Link', { handle: h('wire-1'), job_id: 9999 }, 'no_such_job')).toBe('no such job');
    // discard_output: the status, no output
    const quiet = await c.call('Run', { handle: h('wire-1'), script: 'echo lost; exit 2', discard_output: true });
    expect(quiet.exit_status).toBe(2);
    expect(quiet.stdout ?? Buffer.alloc(0)).toHaveLength(0);
  });

  it('streams output as bytes, ending with a frame that carries exit_status 0', async () => {
    const { job_id } = await c.call('Spawn', {
      handle: h('wire-1'),
      script: `printf '${BINARY_PRINTF}'; sleep 0.2; printf 'e\\377' >&2; sleep 0.2; printf '${BINARY_PRINTF}'`,
    });
    const frames: StreamResponse[] = [];
    for await (const f of c.stream({ handle: h('wire-1'), job_id })) frames.push(f);
    const last = frames.at(-1)!;
    expect(last.exit_status).toBe(0);
    expect(last.data).toBeUndefined();
    expect(last.info?.state).toBe('active');
    const out = Buffer.concat(frames.filter((f) => f.name === 'stdout').map((f) => f.data!));
    const err = Buffer.concat(frames.filter((f) => f.name === 'stderr').map((f) => f.data!));
    expect(out).toEqual(Buffer.concat([BINARY, BINARY]));
    expect(err).toEqual(Buffer.from([0x65, 0xff]));
    expect(frames.filter((f) => f.name === 'stdout').length).toBeGreaterThanOrEqual(2);
    // consumed
    const again: Array<StreamResponse | Error> = [];
    try {
      for await (const f of c.stream({ handle: h('wire-1'), job_id })) again.push(f);
    } catch (e) {
      again.push(e as Error);
    }
    expect(again).toHaveLength(1);
    expect((again[0] as Error).message).toBe('no such job');
  });

  it('copies in and out, a trailing slash copying contents, owner applied', async () => {
    const src = join(d.dir, 'copy-src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'sub', 'b.bin'), BINARY);
    await c.call('CopyIn', { handle: h('wire-1'), src_path: `${src}/`, dst_path: '/home/vcap/app' });
    const r = await c.call('Run', { handle: h('wire-1'), script: 'cd app && cat a.txt && stat -c %U sub/b.bin' });
    expect(r.stdout?.toString()).toBe('alpha\nvcap\n');
    const out = join(d.dir, 'copy-out');
    await c.call('CopyOut', { handle: h('wire-1'), src_path: '/home/vcap/app/', dst_path: out, owner: 'nobody' });
    expect(readFileSync(join(out, 'sub', 'b.bin'))).toEqual(BINARY);
    expect(await refused(c, 'CopyIn', { handle: h('nope'), src_path: src, dst_path: '/tmp' }, 'unknown_handle')).toBe('unknown handle');
  });

  it('sets and reads memory and cpu limits', async () => {
    expect(await c.call('LimitMemory', { handle: h('wire-1'), limit_in_bytes: 256 * 1024 * 1024 })).toEqual({ limit_in_bytes: 256 * 1024 * 1024 });
    expect(await c.call('LimitMemory', { handle: h('wire-1') })).toEqual({ limit_in_bytes: 256 * 1024 * 1024 });
    expect(await c.call('LimitCpu', { handle: h('wire-1'), limit_in_shares: 512 })).toEqual({ limit_in_shares: 512 });
    expect(await c.call('LimitCpu', { handle: h('wire-1') })).toEqual({ limit_in_shares: 512 });
    expect((await c.call('Info', { handle: h('wire-1') })).memory_stat?.hierarchical_memory_limit).toBe(256 * 1024 * 1024);
  });

  it('answers the issue-II requests (net_in, net_out, limit_disk, limit_bandwidth) without breaking the connection', async () => {
    // This wardend runs with issue 6's networking and disk images off: each request is refused
    // with a reason (their own tests cover them switched on).
    const outcomes = await Promise.all(
      [
        c.call('NetIn', { handle: h('wire-1'), container_port: 8080 }),
        c.call('NetOut', { handle: h('wire-1'), network: '10.0.0.0/8', port: 443 }),
        c.call('LimitDisk', { handle: h('wire-1'), byte_limit: 1024 * 1024 * 1024 }),
        c.call('LimitBandwidth', { handle: h('wire-1'), rate: 1_000_000, burst: 100_000 }),
      ].map((p) =>
        p.then(
          () => 'ok',
          (e: WardenResponseError) => `${e.data}: ${e.message}`,
        ),
      ),
    );
    expect(outcomes).toEqual([
      'not_supported:network: this warden runs without container networking (network: false in its config)',
      'not_supported:network: this warden runs without container networking (network: false in its config)',
      'not_supported:disk: limit_disk needs disk limits on (this warden runs with disk: false in its config)',
      'not_supported:network: this warden runs without container networking (network: false in its config)',
    ]);
    expect(await c.call('Ping', {})).toEqual({});
  });

  it('stops (state stopped, no new jobs), then destroys (unknown handle after)', async () => {
    const { job_id } = await c.call('Spawn', { handle: h('wire-1'), script: 'trap "exit 9" TERM; while :; do sleep 0.05; done' });
    await waitFor(async () => (await c.call('Run', { handle: h('wire-1'), script: 'pgrep -c -f "sleep 0.05" || true' })).stdout!.toString().trim() !== '0');
    await c.call('Stop', { handle: h('wire-1') });
    expect((await c.call('Link', { handle: h('wire-1'), job_id })).exit_status).toBe(9);
    expect((await c.call('Info', { handle: h('wire-1') })).state).toBe('stopped');
    expect(await refused(c, 'Run', { handle: h('wire-1'), script: 'true' }, 'bad_state')).toBe("Container state must be one of 'active', current state is 'stopped'");
    await c.call('Destroy', { handle: h('wire-1') });
    expect((await c.call('List', {})).handles ?? []).not.toContainEqual(h('wire-1'));
    for (const name of ['Info', 'Destroy', 'Stop', 'LimitMemory'] as const) {
      expect(await refused(c, name, { handle: h('wire-1') }, 'unknown_handle')).toBe('unknown handle');
    }
    expect(await refused(c, 'Spawn', { handle: h('wire-1'), script: 'true' }, 'unknown_handle')).toBe('unknown handle');
  });

  it('stops with kill and in the background', async () => {
    const { handle } = await c.call('Create', {});
    // A job that says so when a SIGTERM reaches it: kill is SIGKILL alone, no SIGTERM and grace first.
    const { job_id } = await c.call('Spawn', { handle, script: 'trap "echo got TERM; exit 7" TERM; echo up; while :; do sleep 0.05; done' });
    await waitFor(async () => (await c.call('Run', { handle, script: 'pgrep -c -f "sleep 0.05" || true' })).stdout!.toString().trim() !== '0');
    await c.call('Stop', { handle, kill: true });
    expect((await c.call('Info', { handle })).state).toBe('stopped');
    const linked = await c.call('Link', { handle, job_id });
    expect([linked.stdout?.toString(), linked.exit_status]).toEqual(['up\n', 137]);
    const { handle: other } = await c.call('Create', {});
    await c.call('Stop', { handle: other, background: true });
    expect((await c.call('Info', { handle: other })).state).toBe('stopped');
    await c.call('Destroy', { handle });
    await c.call('Destroy', { handle: other });
  });

  it('destroys a container grace_time after its last connection closed', async () => {
    const other = await d.client();
    const { handle } = await other.call('Create', { grace_time: 1 });
    await new Promise((r) => setTimeout(r, 1300));
    expect((await c.call('List', {})).handles).toContainEqual(handle); // still referenced
    other.close();
    await waitFor(async () => !((await c.call('List', {})).handles ?? []).some((x) => x.equals(handle)), 5000);
  });

  it('answers an undecodable frame with an error and keeps serving', async () => {
    const { createConnection } = await import('node:net');
    const raw = createConnection(d.socket);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    const got = new Promise<Buffer>((resolve) => raw.once('data', resolve));
    raw.write(Buffer.from('3\r\n\xff\xff\xff\r\n', 'latin1'));
    expect((await got).length).toBeGreaterThan(4);
    raw.destroy();
    expect(await c.call('Echo', { message: 'still here' })).toEqual({ message: 'still here' });
  });
});
