/**
 * The agent and its app's routes (DESIGN §7, §11), against a real wardend: an instance joins its
 * route once healthy (before RUNNING is reported), leaves it drained before it is stopped, and at
 * once, undrained, when it crashes; a re-push's new instance joins before the old one leaves.
 * With the real router: an agent restart keeps the route answering throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../container-host/agent/agent.ts';
import { LocalRouterRegistrar } from '../../container-host/agent/routes/local-router.ts';
import type { DeregisterOptions, RouteRegistrar, RouteTarget } from '../../container-host/agent/routes/registrar.ts';
import { Router } from '../../local/router/router.ts';
import { until } from '../support/processes.ts';
import { routeGet } from '../support/routes.ts';
import { AgentHarness, HELLO_APP, memoryLogger, skipReason } from './harness.ts';

const h = new AgentHarness('routes', { prefix: `ro${process.pid % 10000}`, pool: '100.100.12.0/24', firstPort: 64101 });

interface Call {
  op: 'register' | 'deregister' | 'reconcile';
  target?: RouteTarget;
  drain?: boolean;
  at: number;
  appAnswered?: boolean;
}

/** Records every call; a drain takes `drainMs`, during which it checks that the app still answers. */
class RecordingRegistrar implements RouteRegistrar {
  readonly calls: Call[] = [];
  drainMs = 0;
  async register(target: RouteTarget): Promise<void> {
    this.calls.push({ op: 'register', target, at: Date.now() });
  }
  async deregister(target: RouteTarget, options: DeregisterOptions): Promise<void> {
    const call: Call = { op: 'deregister', target, drain: options.drain, at: Date.now() };
    this.calls.push(call);
    options.onWithdrawn?.();
    if (options.drain && this.drainMs) {
      await new Promise((r) => setTimeout(r, this.drainMs));
      call.appAnswered = await fetch(`http://${target.host}:${target.port}/`).then(
        (r) => r.ok,
        () => false,
      );
    }
  }
  async reconcile(targets: RouteTarget[]): Promise<void> {
    this.calls.push({ op: 'reconcile', at: Date.now(), target: targets[0] });
  }
  of(appId: string): Call[] {
    return this.calls.filter((c) => c.target?.appId === appId);
  }
}

describe.skipIf(skipReason)('the agent and routes', () => {
  let droplet: string;
  let droplet2: string;
  const registrar = new RecordingRegistrar();
  let agent: Agent;

  beforeAll(async () => {
    await h.start();
    [droplet, droplet2] = await Promise.all([h.droplet('hello', HELLO_APP), h.droplet('hello2', { ...HELLO_APP, command: 'GREETING=two node server.js' })]);
    ({ agent } = await h.startAgent(h.config(), memoryLogger(), registrar));
  });
  afterAll(async () => {
    await h.close();
  });

  it('registers an instance once healthy, before RUNNING; deregisters it with a drain before stopping it', async () => {
    expect(registrar.calls[0]).toMatchObject({ op: 'reconcile', target: undefined });
    const id = 'routed';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64 });
    const running = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    const [reg] = registrar.of(id);
    expect(reg).toMatchObject({ op: 'register', target: { appId: id, instanceId: running.instance_id, index: 0, host: agent.config.advertiseHost, port: running.port } });
    expect(reg.at).toBeLessThanOrEqual(Date.parse(running.timestamp));
    registrar.drainMs = 600;
    await h.send({ kind: 'stop', app_id: id });
    const stopped = await h.events.waitFor(id, (e) => e.state === 'STOPPED');
    registrar.drainMs = 0;
    const dereg = registrar.of(id).find((c) => c.op === 'deregister')!;
    expect(dereg).toMatchObject({ drain: true, target: reg.target, appAnswered: true });
    expect(Date.parse(stopped.timestamp) - dereg.at).toBeGreaterThanOrEqual(600);
  });

  it('deregisters a crashed instance at once, without a drain, and registers it again at its new port once restarted', async () => {
    const id = 'crashing';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64 });
    const first = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    expect((await h.runIn(`dwa-${first.instance_id}-0`, 'kill -9 "$(cat /home/vcap/run.pid)"')).exit).toBe(0);
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED');
    const again = await h.events.waitFor(id, (e) => e.state === 'RUNNING', { after: h.events.of(id).indexOf(crashed) });
    const calls = registrar.of(id).map((c) => [c.op, c.drain, c.target!.port]);
    expect(calls).toEqual([
      ['register', undefined, first.port],
      ['deregister', false, first.port],
      ['register', undefined, again.port],
    ]);
    expect(registrar.of(id)[1].at).toBeLessThanOrEqual(Date.parse(crashed.timestamp));
    await h.send({ kind: 'stop', app_id: id });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED');
    expect(registrar.of(id).at(-1)).toMatchObject({ op: 'deregister', drain: true, target: { port: again.port } });
  });

  it('on a re-push, the new instance joins before the old one leaves (drained), and reports RUNNING once the old one is out of the route', async () => {
    const id = 'repushed';
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64 });
    const old = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    registrar.drainMs = 1500;
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplet2, memory: 64 });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED' && e.instance_id === old.instance_id);
    registrar.drainMs = 0;
    const fresh = h.events.of(id).find((e) => e.state === 'RUNNING' && e.instance_id !== old.instance_id)!;
    const left = registrar.of(id).find((c) => c.op === 'deregister')!;
    // RUNNING (what push waits for) only once the old instance was out of the route, and without waiting for its drain.
    expect(Date.parse(fresh.timestamp)).toBeGreaterThanOrEqual(left.at);
    expect(Date.parse(fresh.timestamp)).toBeLessThan(left.at + 1500);
    const calls = registrar.of(id).map((c) => [c.op, c.target!.instanceId, c.drain]);
    expect(calls).toEqual([
      ['register', old.instance_id, undefined],
      ['register', fresh.instance_id, undefined],
      ['deregister', old.instance_id, true],
    ]);
    await h.send({ kind: 'stop', app_id: id });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED' && e.instance_id === fresh.instance_id);
  });

  it('with the router: an agent restart keeps the route answering throughout, and the new agent keeps it up to date', async () => {
    await agent.stop();
    const router = new Router({
      hosts: ['127.0.0.1'],
      port: 0,
      searchPort: false,
      admin: { host: '127.0.0.1', port: 0 },
      drainTimeoutMs: 5000,
      warmupMs: 0,
      write: () => {},
    });
    await router.start();
    const source = 'this-host';
    const newRegistrar = () => new LocalRouterRegistrar({ admin: router.adminAddress, source, log: memoryLogger(), resyncMs: 200 });
    const reg1 = newRegistrar();
    const first = await h.startAgent(h.config(), memoryLogger(), reg1);
    const id = 'survives';
    const url = `http://${id}.localhost:${router.port}`;
    let looping = true;
    try {
      await h.send({ kind: 'start', app_id: id, droplet_uri: droplet, memory: 64 });
      const running = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
      expect((await routeGet(url)).body).toBe(`hello from ${running.port} 0 \n`);
      const statuses: Array<number | string> = [];
      const loop = (async () => {
        while (looping) {
          statuses.push(
            await routeGet(url, { timeoutMs: 3000 }).then(
              (r) => r.status,
              (e: Error) => e.message,
            ),
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await first.agent.stop();
      reg1.close();
      await new Promise((r) => setTimeout(r, 500));
      const reg2 = newRegistrar();
      try {
        const second = await h.startAgent(h.config(), memoryLogger(), reg2);
        await h.events.waitFor(id, (e) => e.state === 'RUNNING', { after: h.events.of(id).indexOf(running) + 1 });
        await new Promise((r) => setTimeout(r, 500));
        looping = false;
        await loop;
        expect(statuses.length).toBeGreaterThan(20);
        expect(statuses.filter((s) => s !== 200)).toEqual([]);
        // The new agent owns the route: a stop takes it out.
        await h.send({ kind: 'stop', app_id: id });
        await h.events.waitFor(id, (e) => e.state === 'STOPPED');
        await until('the route gone', async () => ((await routeGet(url)).status === 404 ? true : undefined), 5000);
        await second.agent.stop();
      } finally {
        reg2.close();
      }
    } finally {
      looping = false;
      reg1.close();
      await router.close();
    }
  });
});
