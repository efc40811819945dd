/**
 * `dropwarden agent` as a process: it prints its ready line, leaves its instances running when
 * stopped, and the next agent adopts them: no orphan, no duplicate, RUNNING again after a
 * health check, watched again (a crash is restarted), stray containers destroyed, half-launched
 * ones launched again. And a host without room: starts left for others, stops still taken.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/processes.ts';
import { AgentHarness, HELLO_APP, type RunningAgent, skipReason } from './harness.ts';

const h = new AgentHarness('adopt', { prefix: `aa${process.pid % 10000}`, pool: '100.100.1.0/24', firstPort: 62701 });
const startAgentProcess = () => h.startAgentProcess({ DROPWARDEN_MAX_RESTARTS: '2' });
const stopAgentProcess = (agent: RunningAgent) => h.stopAgentProcess(agent);

describe.skipIf(skipReason)('the agent on its host', () => {
  beforeAll(async () => {
    await h.start();
  });

  afterAll(async () => {
    await h.close();
  });

  it('leaves instances running, and the next agent adopts them without starting any again', async () => {
    const droplet = await h.droplet('hello', HELLO_APP);
    const first = await startAgentProcess();
    expect(first.api).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`http://${first.api}/v1/healthz`)).json()).toEqual({ ok: true });

    const id = 'adoptee';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64, instances: 3 });
    const running = await Promise.all([0, 1, 2].map((index) => h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === index)));
    const handles = await h.handles();
    expect(handles.sort()).toEqual(running.map((r) => `dwa-${r.instance_id}-0`).sort());

    expect(await stopAgentProcess(first)).toBe(0);
    // No agent: the apps keep serving.
    for (const r of running) expect((await fetch(r.url!)).status).toBe(200);
    // While no agent watches, instance 2's app dies; and a container no agent set up appears.
    expect((await h.runIn(`dwa-${running[2].instance_id}-0`, 'kill -9 "$(cat /home/vcap/run.pid)"')).exit).toBe(0);
    // … and one an agent stopped half-way through launching: properties written, nothing spawned.
    const client = await h.wardend.client();
    await client.call('Create', { handle: Buffer.from('dwa-stray-0'), grace_time: 600 });
    await client.call('Create', { handle: Buffer.from('dwa-half-0'), grace_time: 600 });
    client.close();
    const half = {
      app_id: 'half',
      instance_id: 'half',
      index: 0,
      restarts: 0,
      host_port: 1,
      container_port: 1,
      started_at: new Date().toISOString(),
      accepted_at: new Date().toISOString(),
      request: {
        kind: 'start',
        app_id: 'half',
        droplet_uri: droplet,
        instances: 1,
        memory: 64,
        disk: 256,
        environment: [],
        services: [],
        health_check: { type: 'port' },
      },
    };
    expect((await h.runIn('dwa-half-0', `mkdir -p /etc/dropwarden && echo '${JSON.stringify(half)}' > /etc/dropwarden/instance.json`)).exit).toBe(0);

    const seen = h.events.of(id).length;
    const second = await startAgentProcess();
    // 0 and 1: RUNNING again (health-checked), same instances, nothing STARTING.
    for (const r of running.slice(0, 2)) {
      const again = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.instance_id === r.instance_id, { after: seen });
      expect(again).toMatchObject({ index: r.index, port: r.port, url: r.url, restarts: 0 });
    }
    // 2: its exit is reported, then it is restarted in a fresh container.
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED', { after: seen });
    expect(crashed).toMatchObject({ instance_id: running[2].instance_id, reason: 'exited with status 137' });
    const restarted = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.instance_id === running[2].instance_id, { after: seen });
    expect(restarted.restarts).toBe(1);
    expect(
      h.events
        .of(id)
        .slice(seen)
        .filter((e) => e.state === 'STARTING')
        .map((e) => e.instance_id),
    ).toEqual([running[2].instance_id]);

    // The half-launched one is launched again, in a fresh container of the same name.
    const relaunched = await h.events.waitFor('half', (e) => e.state === 'RUNNING');
    expect(relaunched).toMatchObject({ instance_id: 'half', restarts: 0 });
    expect((await fetch(relaunched.url!)).status).toBe(200);
    await h.send({ kind: 'stop', app_id: 'half' });
    await h.events.waitFor('half', (e) => e.state === 'STOPPED');

    const now = await h.handles();
    expect(now).not.toContain('dwa-stray-0');
    expect(now.sort()).toEqual([`dwa-${running[0].instance_id}-0`, `dwa-${running[1].instance_id}-0`, `dwa-${running[2].instance_id}-1`].sort());
    const app = (await (await fetch(`http://${second.api}/v1/apps/${id}`)).json()) as { instances: Array<{ state: string }> };
    expect(app.instances.map((i) => i.state)).toEqual(['RUNNING', 'RUNNING', 'RUNNING']);

    // An adopted instance is watched: its crash is noticed and restarted.
    const afterAdopt = h.events.of(id).length;
    expect((await h.runIn(`dwa-${running[0].instance_id}-0`, 'kill -9 "$(cat /home/vcap/run.pid)"')).exit).toBe(0);
    expect(await h.events.waitFor(id, (e) => e.state === 'CRASHED', { after: afterAdopt })).toMatchObject({
      instance_id: running[0].instance_id,
      reason: 'exited with status 137',
    });
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.instance_id === running[0].instance_id, { after: afterAdopt });

    await h.send({ kind: 'stop', app_id: id });
    await until('all three STOPPED', () => (h.events.of(id).filter((e) => e.state === 'STOPPED').length === 3 ? true : undefined), 30_000);
    expect(await h.handles()).toEqual([]);
    expect(await stopAgentProcess(second)).toBe(0);
    const logged = second.output.join('\n');
    expect(logged).toContain('"message":"Adopted an instance"');
    expect(logged).toContain('"message":"Destroying a container with no instance properties"');
    expect(logged).toContain('"message":"Launching again an instance whose start an earlier agent did not finish"');
    expect(logged).not.toContain('"level":"ERROR"');
  });

  it('a full host leaves starts that do not fit now for other hosts (and takes them once it has room), yet still takes stops', async () => {
    const droplet = await h.droplet('hello', HELLO_APP);
    const { agent, log } = await h.startAgent(h.config({ DROPWARDEN_AGENT_MEMORY_MB: '100' }));
    await h.send({ kind: 'start', app_id: 'small', droplet_uri: droplet, memory: 96 });
    await h.events.waitFor('small', (e) => e.state === 'RUNNING');
    expect(agent.capacity.hasRoom()).toBe(false);
    // 64 MB would fit this host empty, not now: left on the queue (logged), not answered.
    await h.send({ kind: 'start', app_id: 'later', droplet_uri: droplet, memory: 64 });
    await until('the start that does not fit now to be left', () => log.entries.find((e) => e.message.startsWith('No room') && e.app_id === 'later'));
    expect(h.events.of('later')).toEqual([]);
    await h.send({ kind: 'stop', app_id: 'small' });
    await h.events.waitFor('small', (e) => e.state === 'STOPPED', { ms: 15_000 });
    // With room again, the start that waited comes back and runs here.
    await h.events.waitFor('later', (e) => e.state === 'RUNNING', { ms: 30_000 });
    await h.send({ kind: 'stop', app_id: 'later' });
    await h.events.waitFor('later', (e) => e.state === 'STOPPED', { ms: 15_000 });
    expect(agent.capacity.free()).toEqual({ memoryMb: 100, diskMb: 16384, instances: 0 });
    // A stop for an app no host runs goes round a few times, then is dropped.
    await h.send({ kind: 'stop', app_id: 'ghost' });
    await until(
      'the stop for no app to be dropped',
      () => log.entries.find((e) => e.message.startsWith('Stop request for an app no host took') && e.app_id === 'ghost'),
      20_000,
    );
    expect(h.events.of('ghost')).toEqual([]);
    expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
