/**
 * Issue 6, restarts: wardend killed with SIGKILL (or drained with SIGUSR2) and started again on
 * the same depot keeps its containers, their jobs (exit status and output not yet consumed),
 * their uids and their grace time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WardenClient } from '../../../container-host/warden/client/client.ts';
import { cgroupParentDirs, skipReason, sleepMs, waitFor } from '../linux/helpers.ts';
import { until } from '../../support/processes.ts';
import { alive, WardendProcess } from './wardend.ts';
import { iptablesLines, removeWardenNetwork } from '../linux/net-helpers.ts';

const OUTPUT = Buffer.from([0x6f, 0x75, 0x74, 0xff, 0x00, 0x0a]);

async function uidOf(c: WardenClient, handle: Buffer): Promise<number> {
  return Number((await c.call('Run', { handle, script: 'id -u' })).stdout!.toString());
}

async function listed(c: WardenClient): Promise<string[]> {
  return ((await c.call('List', {})).handles ?? []).map((b) => b.toString('latin1'));
}

function initPid(d: WardendProcess, handle: string): number {
  return (JSON.parse(readFileSync(join(d.backend.depotDir, handle, 'container.json'), 'utf8')) as { initPid: number }).initPid;
}

describe.skipIf(skipReason)('wardend restarts (real daemon, SIGKILL and SIGUSR2)', () => {
  let d: WardendProcess;
  beforeAll(async () => {
    d = new WardendProcess('restart', { drainTimeoutMs: 1000 });
    await d.start();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('after SIGKILL: containers listed, a running job and a finished one linked with status and output, uids not reused', async () => {
    let c = await d.client();
    const a = (await c.call('Create', { handle: Buffer.from('keep-a') })).handle;
    const b = (await c.call('Create', { handle: Buffer.from('keep-b') })).handle;
    const uids = [await uidOf(c, a), await uidOf(c, b)];
    const running = await c.call('Spawn', { handle: b, script: "sleep 1.5; printf 'out\\377\\000\\n'; echo late >&2; exit 5" });
    const finished = await c.call('Spawn', { handle: a, script: 'echo early; exit 0' });
    await sleepMs(300); // the quick one is done before the kill
    const inits = [initPid(d, 'keep-a'), initPid(d, 'keep-b')];

    expect(await d.stop('SIGKILL')).toBe('SIGKILL');
    expect(inits.every(alive)).toBe(true);
    await d.start();
    c = await d.client();

    expect((await listed(c)).sort()).toEqual(['keep-a', 'keep-b']);
    expect((await c.call('Info', { handle: b })).job_ids).toContain(running.job_id);
    const late = await c.call('Link', { handle: b, job_id: running.job_id });
    expect(late.exit_status).toBe(5);
    expect(late.stdout).toEqual(OUTPUT);
    expect(late.stderr?.toString()).toBe('late\n');
    const early = await c.call('Link', { handle: a, job_id: finished.job_id });
    expect(early).toMatchObject({ exit_status: 0, stdout: Buffer.from('early\n') });

    // job ids go on from where they were; new uids are not ones still in use
    const next = await c.call('Spawn', { handle: b, script: 'true' });
    expect(next.job_id).toBeGreaterThan(running.job_id);
    await c.call('Link', { handle: b, job_id: next.job_id });
    const fresh = (await c.call('Create', {})).handle;
    expect(uids).not.toContain(await uidOf(c, fresh));
    expect(await uidOf(c, a)).toBe(uids[0]);
    await c.call('Destroy', { handle: fresh });
  });

  it('a stream cut by SIGKILL: after the restart, link returns the exit status and only the output not yet sent', async () => {
    const c = await d.client();
    const handle = (await c.call('Create', { handle: Buffer.from('streamed') })).handle;
    const { job_id } = await c.call('Spawn', { handle, script: "printf 'first\\377'; sleep 1.5; printf 'second\\000'; exit 6" });
    const frames = c.stream({ handle, job_id })[Symbol.asyncIterator]();
    const first = await frames.next();
    expect(first.value).toMatchObject({ name: 'stdout', data: Buffer.from('first\xff', 'latin1') });
    await sleepMs(200);
    await d.stop('SIGKILL');
    await d.start();
    const c2 = await d.client();
    const linked = await c2.call('Link', { handle, job_id });
    expect(linked.exit_status).toBe(6);
    expect(linked.stdout).toEqual(Buffer.from('second\x00', 'latin1'));
    await c2.call('Destroy', { handle });
  });

  it('cleans up, on start, a container whose init died while no daemon ran', async () => {
    const c = await d.client();
    await c.call('Create', { handle: Buffer.from('doomed') });
    const init = initPid(d, 'doomed');
    await d.stop('SIGKILL');
    process.kill(init, 'SIGKILL');
    await waitFor(async () => !alive(init), 3000);
    await d.start();
    const c2 = await d.client();
    expect(await listed(c2)).not.toContain('doomed');
    expect(existsSync(join(d.backend.depotDir, 'doomed'))).toBe(false);
    expect(cgroupParentDirs(d.cgroupParent).some((dir) => existsSync(join(dir, 'doomed')))).toBe(false);
  });

  it('grace_time keeps counting across a restart', async () => {
    const owner = await d.client();
    await owner.call('Create', { handle: Buffer.from('graceful'), grace_time: 6 });
    const idleSince = () => (JSON.parse(readFileSync(join(d.backend.depotDir, 'graceful', 'container.json'), 'utf8')) as { idleSince?: number }).idleSince;
    // Referenced: no grace clock (the record the create wrote is rewritten once the connection holds it).
    await until('the grace clock cleared while referenced', () => (idleSince() === undefined ? true : undefined), 5000);
    const releasedAt = Date.now();
    owner.close(); // unreferenced from now on
    const since = await until('the grace clock in the depot', idleSince, 5000);
    expect(since).toBeGreaterThanOrEqual(releasedAt);
    await d.stop('SIGKILL');
    await d.start();
    const c2 = await d.client();
    expect(await listed(c2)).toContain('graceful');
    // The restored clock is the one from the release, not one started by the restart.
    expect(idleSince()).toBe(since);
    await waitFor(async () => !(await listed(c2)).includes('graceful'), 15_000);
  });

  it('SIGUSR2 drains: stops accepting, answers what it read, exits 0; containers and jobs keep running', async () => {
    const c = await d.client();
    const { handle } = await c.call('Create', { handle: Buffer.from('drained') });
    const init = initPid(d, 'drained');
    const { job_id } = await c.call('Spawn', { handle, script: 'sleep 2; echo after the drain' });
    // a Link in flight: cut after drainTimeoutMs (the job goes on), linkable again after restart
    const linking = c.call('Link', { handle, job_id }).then(
      () => 'answered',
      (e: Error) => e.message,
    );
    const quick = await d.client();
    const echoed = quick.call('Echo', { message: 'answered before exit' });
    await sleepMs(100);
    expect(await d.stop('SIGUSR2')).toBe(0);
    expect(await echoed).toEqual({ message: 'answered before exit' });
    expect(await linking).toMatch(/closed the connection/);
    expect(d.stderr).toContain('SIGUSR2, draining');
    expect(alive(init)).toBe(true);

    await d.start();
    const c2 = await d.client();
    expect(await listed(c2)).toContain('drained');
    const linked = await c2.call('Link', { handle, job_id });
    expect(linked).toMatchObject({ exit_status: 0, stdout: Buffer.from('after the drain\n') });
    await c2.call('Destroy', { handle });
  });
});

describe.skipIf(skipReason)('wardend restarts with networking on', () => {
  const prefix = `rn${process.pid % 10000}`;
  const pool = '100.97.0.0/28';
  let d: WardendProcess;
  beforeAll(async () => {
    d = new WardendProcess('restartnet', { network: { pool, prefix, portPool: { first: 62101, size: 4 }, mtu: 1500 } });
    await d.start();
  });
  afterAll(async () => {
    try {
      await d?.cleanup();
    } finally {
      await removeWardenNetwork(prefix, pool);
    }
    expect(iptablesLines(prefix)).toEqual([]);
  });

  it('after SIGKILL, a net_in mapping still answers and its port and /30 are not handed out again', async () => {
    let c = await d.client();
    const handle = (await c.call('Create', { handle: Buffer.from('served') })).handle;
    await c.call('Run', { handle, script: 'mkdir -p /tmp/www && echo served-across-restarts > /tmp/www/index.html' });
    await c.call('Spawn', { handle, script: 'cd /tmp/www && exec python3 -m http.server 8080' });
    const { host_port } = await c.call('NetIn', { handle, container_port: 8080 });
    const { container_ip } = await c.call('Info', { handle });
    await waitFor(async () => (await get(`http://127.0.0.1:${host_port}/`)) === 'served-across-restarts\n', 10_000);

    expect(await d.stop('SIGKILL')).toBe('SIGKILL');
    expect(await get(`http://127.0.0.1:${host_port}/`)).toBe('served-across-restarts\n'); // the kernel keeps forwarding
    await d.start();
    c = await d.client();
    expect(await listed(c)).toEqual(['served']);
    expect(await get(`http://127.0.0.1:${host_port}/`)).toBe('served-across-restarts\n');

    const other = (await c.call('Create', {})).handle;
    expect((await c.call('Info', { handle: other })).container_ip).not.toBe(container_ip);
    expect((await c.call('NetIn', { handle: other, container_port: 8080 })).host_port).not.toBe(host_port);
    await c.call('Destroy', { handle: other });
    await c.call('Destroy', { handle });
  });
});

async function get(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return await res.text();
  } catch {
    return undefined;
  }
}
