import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StreamChunk } from '../../../container-host/warden/server/service.ts';
import { job, skipReason, startWarden, type Harness } from './helpers.ts';

describe.skipIf(skipReason)('warden linux backend: jobs, files and limits', () => {
  let h: Harness;
  let handle: string;
  beforeAll(async () => {
    h = await startWarden('jobs', { maxOutputBytes: 64 * 1024 });
    ({ handle } = await h.warden.create({ bindMounts: [] }));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs a script under /bin/bash with exit status and byte-exact stdout and stderr', async () => {
    const r = await h.warden.run(job(handle, 'echo -n "$BASH_VERSION" | grep -q . && printf "\\xff\\x00ok"; printf "err\\xfe" >&2; exit 42'));
    expect(r.exitStatus).toBe(42);
    expect(r.stdout).toEqual(Buffer.from([0xff, 0x00, 0x6f, 0x6b]));
    expect(r.stderr).toEqual(Buffer.from([0x65, 0x72, 0x72, 0xfe]));
    expect(r.info.state).toBe('active');
    expect((await h.warden.run(job(handle, 'exit 0'))).exitStatus).toBe(0);
  });

  it('spawns and links; a job is consumed by link', async () => {
    const { jobId } = await h.warden.spawn(job(handle, 'sleep 0.2; echo linked'));
    expect((await h.warden.info(handle)).jobIds).toContain(jobId);
    const r = await h.warden.link(handle, jobId);
    expect(r.stdout.toString()).toBe('linked\n');
    expect(r.info.jobIds).not.toContain(jobId);
    await expect(h.warden.link(handle, jobId)).rejects.toThrow(/^no such job$/);
    await expect(h.warden.link(handle, 999)).rejects.toThrow(/^no such job$/);
  });

  it('streams output as it is produced, ending with the exit status; a stream consumes the job', async () => {
    // Each line waits for a file the test writes only once it has the line before: output that
    // came only at the job's end would leave the job waiting (up to 30 s, then exit 9).
    const wait = (n: number) => `for _ in $(seq 600); do [ -e /tmp/go.${n} ] && break; sleep 0.05; done; [ -e /tmp/go.${n} ] || exit 9`;
    const { jobId } = await h.warden.spawn(job(handle, `rm -f /tmp/go.*; echo one; ${wait(1)}; echo two >&2; ${wait(2)}; echo three; exit 5`));
    const chunks: StreamChunk[] = [];
    let lines = 0;
    for await (const chunk of h.warden.stream(handle, jobId)) {
      chunks.push(chunk);
      if ('data' in chunk) await h.warden.run(job(handle, `touch /tmp/go.${++lines}`));
    }
    const data = chunks.filter((c) => 'data' in c) as Array<{ name: string; data: Buffer }>;
    expect(data.map((c) => `${c.name}:${c.data.toString()}`)).toEqual(['stdout:one\n', 'stderr:two\n', 'stdout:three\n']);
    const last = chunks.at(-1)!;
    expect(last).toMatchObject({ exitStatus: 5 });
    expect('info' in last && last.info.state).toBe('active');
    await expect(h.warden.link(handle, jobId)).rejects.toThrow(/^no such job$/);
  });

  it('a stream cut short (the client left) leaves the job linkable, with only the output not yet sent', async () => {
    const { jobId } = await h.warden.spawn(job(handle, 'echo one; sleep 0.3; echo two; exit 7'));
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const chunk of h.warden.stream(handle, jobId, abort.signal)) {
      if ('data' in chunk) seen.push(chunk.data.toString());
      abort.abort();
    }
    expect(seen).toEqual(['one\n']);
    expect((await h.warden.info(handle)).jobIds).toContain(jobId);
    const r = await h.warden.link(handle, jobId);
    expect(r.exitStatus).toBe(7);
    expect(r.stdout.toString()).toBe('two\n');
    await expect(h.warden.link(handle, jobId)).rejects.toThrow(/^no such job$/);
  });

  it('a link cut short (the client left) leaves the job linkable', async () => {
    const { jobId } = await h.warden.spawn(job(handle, 'sleep 0.3; echo done'));
    const abort = new AbortController();
    const cut = h.warden.link(handle, jobId, abort.signal);
    abort.abort();
    await expect(cut).rejects.toThrow(/cut short/);
    expect((await h.warden.link(handle, jobId)).stdout.toString()).toBe('done\n');
  });

  it('kills a job whose output exceeds the cap and reports the event', async () => {
    const r = await h.warden.run(job(handle, 'yes | head -c 10000000; echo after'));
    expect(r.stdout.length).toBeLessThanOrEqual(64 * 1024);
    expect(r.info.events).toContain('command exceeded maximum output');
    // A job that keeps writing is killed rather than left to fill the disk.
    const endless = await h.warden.run(job(handle, 'while :; do yes | head -c 100000; sleep 0.01; done'));
    expect(endless.exitStatus).toBe(137);
    expect(endless.stdout.length).toBeLessThanOrEqual(64 * 1024);
  });

  it('discards output when asked', async () => {
    const r = await h.warden.run(job(handle, 'echo gone; echo gone >&2', { discardOutput: true }));
    expect(r.exitStatus).toBe(0);
    expect(r.stdout.length + r.stderr.length).toBe(0);
  });

  it('applies rlimits', async () => {
    const r = await h.warden.run(job(handle, 'ulimit -n; ulimit -c', { rlimits: { nofile: 64, core: 0 } }));
    expect(r.stdout.toString()).toBe('64\n0\n');
  });

  it('copies in and out with rsync semantics and owner', async () => {
    const src = join(h.dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'A');
    writeFileSync(join(src, 'sub/b.txt'), 'B');
    await h.warden.copyIn(handle, src, '/home/vcap/');
    await h.warden.copyIn(handle, `${src}/`, '/home/vcap/flat');
    const r = await h.warden.run(job(handle, 'cd ~ && find src flat -type f | sort && stat -c %U src/a.txt && echo C > made.txt'));
    expect(r.stdout.toString()).toBe('flat/a.txt\nflat/sub/b.txt\nsrc/a.txt\nsrc/sub/b.txt\nvcap\n');

    const out = join(h.dir, 'out');
    mkdirSync(out);
    await h.warden.copyOut(handle, '/home/vcap/flat/', join(out, 'contents'));
    await h.warden.copyOut(handle, '/home/vcap/made.txt', out, 'nobody');
    expect(readFileSync(join(out, 'contents/sub/b.txt'), 'utf8')).toBe('B');
    expect(readFileSync(join(out, 'made.txt'), 'utf8')).toBe('C\n');
    expect(statSync(join(out, 'made.txt')).uid).toBe(65534);
    await expect(h.warden.copyOut(handle, '/no/such/file', out)).rejects.toThrow(/copy_out failed/);
  });

  it('confines symlinks in the container to the container', async () => {
    const hostTarget = join(h.dir, 'host-only');
    mkdirSync(hostTarget);
    writeFileSync(join(hostTarget, 'secret'), 'host secret');
    // A job plants links that would reach host paths if followed on the host.
    await h.warden.run(job(handle, `ln -s ${hostTarget} ~/escape; ln -s / ~/root-link`));
    const out = join(h.dir, 'escape-out');
    mkdirSync(out);
    await expect(h.warden.copyOut(handle, '/home/vcap/escape/secret', out)).rejects.toThrow(/copy_out failed/);
    await h.warden.copyOut(handle, '/home/vcap/root-link/etc/hosts', out);
    // the container's /etc/hosts (the base's), not the host's
    expect(readFileSync(join(out, 'hosts'), 'utf8')).toBe((await h.warden.run(job(handle, 'cat /etc/hosts'))).stdout.toString());

    const payload = join(h.dir, 'payload');
    writeFileSync(payload, 'pwned');
    // rsync refuses to write through the (in the container, dangling) link: either way, not the host.
    await h.warden.copyIn(handle, payload, '/home/vcap/escape/').catch(() => undefined);
    expect(existsSync(join(hostTarget, 'payload'))).toBe(false);
    expect(lstatSync(join(hostTarget, 'secret')).isFile()).toBe(true);
  });

  it('limits memory and cpu, reading them back', async () => {
    expect((await h.warden.limitMemory(handle, 256 * 1024 * 1024)).limitInBytes).toBe(256 * 1024 * 1024);
    expect((await h.warden.limitMemory(handle)).limitInBytes).toBe(256 * 1024 * 1024);
    expect((await h.warden.limitCpu(handle, 512)).limitInShares).toBe(512);
    expect((await h.warden.limitCpu(handle)).limitInShares).toBe(512);
    const info = await h.warden.info(handle);
    expect(info.memoryStat!.hierarchicalMemoryLimit).toBe(256 * 1024 * 1024);
  });

  it("refuses a memory limit below the container's usage with a message a user can act on", async () => {
    const { handle: full } = await h.warden.create({ bindMounts: [] });
    // 40 MB of anonymous memory the kernel cannot reclaim (no swap for a container)
    const { jobId } = await h.warden.spawn(job(full, `python3 -c 'import time; b = bytearray(40 << 20); print("ready", flush=True); time.sleep(600)'`));
    const stream = h.warden.stream(full, jobId);
    for await (const chunk of stream) if ('name' in chunk && chunk.data.toString().includes('ready')) break;
    const err = await h.warden.limitMemory(full, 1048576).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /^memory limit 1048576 is below the container's current usage of \d+ bytes, and the kernel could not reclaim enough to fit; .* or set a limit of at least \d+ bytes$/,
    );
    expect(err?.message).not.toMatch(/EBUSY|\/sys\/fs\/cgroup/);
    const usage = Number(/usage of (\d+) bytes/.exec(err!.message)![1]);
    expect(usage).toBeGreaterThan(40 << 20);
    // the limit it had is kept
    expect((await h.warden.limitMemory(full)).limitInBytes).not.toBe(1048576);
    await h.warden.destroy(full);
  });

  it('with network and disk off in its config, answers the issue-6 requests with a clear error', async () => {
    await expect(h.warden.netIn({ handle, containerPort: 8080 })).rejects.toThrow(/without container networking/);
    await expect(h.warden.netOut({ handle, network: '10.0.0.0/8' })).rejects.toThrow(/without container networking/);
    await expect(h.warden.limitBandwidth(handle, 1000, 1000)).rejects.toThrow(/without container networking/);
    await expect(h.warden.limitDisk(handle, { byteLimit: 1 })).rejects.toThrow(/disk: false/);
  });
});
