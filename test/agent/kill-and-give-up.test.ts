/**
 * Two endings of the agent's watch (DESIGN §11): the agent itself SIGKILLed with instances
 * running (no clean detach: the next agent finds them as wardend keeps them, adopts them,
 * health-checks them RUNNING again and watches them, nothing started twice), and an instance
 * that runs out of restarts (it stays CRASHED with its last reason, its container is gone, its
 * capacity is free, and the API says so).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/processes.ts';
import { AgentHarness, HELLO_APP, type RunningAgent, skipReason } from './harness.ts';

const h = new AgentHarness('kill', { prefix: `ak${process.pid % 10000}`, pool: '100.100.3.0/24', firstPort: 62201 });

describe.skipIf(skipReason)('the agent, killed and giving up', () => {
  let agentProcess: RunningAgent | undefined;
  beforeAll(async () => {
    await h.start();
  });
  // An agent process a failed test left would take the next test's messages.
  afterEach(async () => {
    if (agentProcess) await h.stopAgentProcess(agentProcess, 'SIGKILL');
    agentProcess = undefined;
  });

  afterAll(async () => {
    await h.close();
  });

  it('SIGKILLed with instances running: the next agent adopts them, RUNNING again, watched, none started twice', { timeout: 150_000 }, async () => {
    const droplet = await h.droplet('hello', HELLO_APP);
    const first = (agentProcess = await h.startAgentProcess());
    const id = 'killed-agent';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64, instances: 2 });
    const running = await Promise.all([0, 1].map((index) => h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === index)));
    const handles = (await h.handles()).sort();
    expect(handles).toEqual(running.map((r) => `dwa-${r.instance_id}-0`).sort());

    expect(await h.stopAgentProcess(first, 'SIGKILL')).toBe('SIGKILL');
    // No agent: the containers and the apps in them are untouched.
    expect((await h.handles()).sort()).toEqual(handles);
    for (const r of running) expect((await fetch(r.url!)).status).toBe(200);

    const seen = h.events.of(id).length;
    const second = (agentProcess = await h.startAgentProcess());
    for (const r of running) {
      const again = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.instance_id === r.instance_id, { after: seen });
      expect(again).toMatchObject({ index: r.index, port: r.port, url: r.url, restarts: 0 });
    }
    expect(
      h.events
        .of(id)
        .slice(seen)
        .map((e) => e.state),
    ).toEqual(['RUNNING', 'RUNNING']);
    expect((await h.handles()).sort()).toEqual(handles);
    const app = (await (await fetch(`http://${second.api}/v1/apps/${id}`)).json()) as { instances: Array<{ instance_id: string; state: string }> };
    expect(app.instances.map((i) => [i.instance_id, i.state]).sort()).toEqual(running.map((r) => [r.instance_id, 'RUNNING']).sort());

    // Watched: a crash of an adopted instance is seen and restarted.
    const afterAdopt = h.events.of(id).length;
    expect((await h.runIn(`dwa-${running[1].instance_id}-0`, 'kill -9 "$(cat /home/vcap/run.pid)"')).exit).toBe(0);
    expect(await h.events.waitFor(id, (e) => e.state === 'CRASHED', { after: afterAdopt })).toMatchObject({
      instance_id: running[1].instance_id,
      reason: 'exited with status 137',
    });
    expect(await h.events.waitFor(id, (e) => e.state === 'RUNNING', { after: afterAdopt })).toMatchObject({ instance_id: running[1].instance_id, restarts: 1 });

    expect(second.output.join('\n')).toContain('"message":"Adopted an instance"');
    await h.send({ kind: 'stop', app_id: id });
    // The killed agent's long poll may still be open on the emulator's side, and the stop handed
    // to it: it comes back after the queue's visibility timeout (30 s), hence the long guard.
    await until('both STOPPED', () => (h.events.of(id).filter((e) => e.state === 'STOPPED').length === 2 ? true : undefined), 90_000);
    expect(await h.handles()).toEqual([]);
    expect(await h.stopAgentProcess(second)).toBe(0);
  });

  it('out of restarts: CRASHED for good with the last reason and logs, no container, capacity free, the API says CRASHED', async () => {
    const droplet = await h.droplet('doomed', { files: { 'run.sh': 'echo "cannot start: no config" >&2\nexit 3\n' }, command: 'bash run.sh' });
    const { agent, log } = await h.startAgent(h.config({ DROPWARDEN_MAX_RESTARTS: '2' }));
    const full = agent.capacity.free();
    const id = 'doomed';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64 });
    const gaveUp = await until(
      'the agent to give the instance up',
      () => log.entries.find((e) => e.message === 'Instance crashed and will not be restarted' && e.app_id === id),
      60_000,
    );
    expect(gaveUp).toMatchObject({ reason: 'exited with status 3', restarts: 2 });

    // Two restarts after the first crash, each reported, then nothing more.
    await until('the last CRASHED on the events queue', () => (h.events.of(id).filter((e) => e.state === 'CRASHED').length === 3 ? true : undefined));
    expect(h.events.of(id).map((e) => [e.state, e.restarts])).toEqual([
      ['STARTING', 0],
      ['CRASHED', 0],
      ['STARTING', 1],
      ['CRASHED', 1],
      ['STARTING', 2],
      ['CRASHED', 2],
    ]);
    const last = h.events.of(id).at(-1)!;
    expect(last).toMatchObject({ reason: 'exited with status 3', url: null });
    expect(last.logs_tail).toContain('cannot start: no config');

    expect((await h.handles()).filter((x) => x.includes(last.instance_id))).toEqual([]);
    expect(agent.capacity.free()).toEqual(full);
    const res = await fetch(`http://${agent.apiAddress}/v1/apps/${id}`);
    expect(res.status).toBe(200);
    const app = (await res.json()) as { instances: Array<{ instance_id: string; state: string; reason: string | null; restarts?: number }> };
    expect(app.instances).toEqual([expect.objectContaining({ instance_id: last.instance_id, state: 'CRASHED', reason: 'exited with status 3' })]);

    // A stop still ends it: STOPPED, and the app is gone from the API.
    await h.send({ kind: 'stop', app_id: id });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED');
    await until('the app to leave the API', async () => ((await fetch(`http://${agent.apiAddress}/v1/apps/${id}`)).status === 404 ? true : undefined));
  });
});
