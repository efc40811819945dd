/**
 * The agent against a real wardend and the embedded S3+SQS: StartRequests become health-checked
 * instances that answer HTTP from the host; crashes, OOM kills and failed health checks are
 * reported and restarted; StopRequests stop and destroy; duplicates start nothing twice;
 * malformed messages are logged and dropped; the API lists apps and serves their logs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../container-host/agent/agent.ts';
import { AgentHarness, DEAF_APP, fixtureApp, GREEDY_APP, HELLO_APP, type memoryLogger, skipReason } from './harness.ts';

const h = new AgentHarness('life', { prefix: `al${process.pid % 10000}`, pool: '100.100.0.0/24', firstPort: 62501 });
let agent: Agent;
let log: ReturnType<typeof memoryLogger>;
const droplets: Record<string, string> = {};

const appId = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

describe.skipIf(skipReason)('the agent', () => {
  beforeAll(async () => {
    await h.start();
    ({ agent, log } = await h.startAgent());
    const [hello, nodeHello, deaf, greedy] = await Promise.all([
      h.droplet('hello', HELLO_APP),
      h.droplet('node-hello', fixtureApp('node-hello', 'node server.js')),
      h.droplet('deaf', DEAF_APP),
      h.droplet('greedy', GREEDY_APP),
    ]);
    Object.assign(droplets, { hello, nodeHello, deaf, greedy });
  });

  afterAll(async () => {
    await h.close();
  });

  it.concurrent('starts an instance: STARTING, then RUNNING with a URL that answers from the host', async () => {
    const id = appId('hello');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.nodeHello, memory: 128, environment: ['NODE_ENV=production'] });
    const running = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    const starting = h.events.of(id).find((e) => e.state === 'STARTING')!;
    expect(starting.instance_id).toBe(running.instance_id);
    expect(running).toMatchObject({ index: 0, host: agent.config.advertiseHost, reason: null, droplet_uri: droplets.nodeHello });
    expect(running.url).toBe(`http://${agent.config.advertiseHost}:${running.port}`);
    expect(await get(running.url!)).toEqual({ status: 200, body: 'Hello from node (production)\n' });
    await h.send({ kind: 'stop', app_id: id });
    await h.events.waitFor(id, (e) => e.state === 'STOPPED');
  });
});
