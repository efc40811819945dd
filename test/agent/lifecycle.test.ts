/**
 * The agent against a real wardend and the embedded S3+SQS: StartRequests become health-checked
 * instances that answer HTTP from the host; crashes, OOM kills and failed health checks are
 * reported and restarted; StopRequests stop and destroy; duplicates start nothing twice;
 * malformed messages are logged and dropped; the API lists apps and serves their logs.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../container-host/agent/agent.ts';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { sqsClient } from '../../lib/aws/clients.ts';
import { until } from '../support/processes.ts';
import { AgentHarness, DEAF_APP, EventReader, fixtureApp, GREEDY_APP, HELLO_APP, type memoryLogger, skipReason } from './harness.ts';

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

  it.concurrent('restarts an instance whose process is killed: CRASHED naming the exit, then RUNNING again', async () => {
    const id = appId('killed');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64 });
    const first = await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    const handle = (await apiJson(`/v1/apps/${id}`)).instances[0].handle;
    expect((await h.runIn(handle, 'kill -9 "$(cat /home/vcap/run.pid)"')).exit).toBe(0);
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED');
    expect(crashed).toMatchObject({ instance_id: first.instance_id, reason: 'exited with status 137', restarts: 0 });
    expect(crashed.logs_tail).toContain('listening on');
    const again = await h.events.waitFor(id, (e) => e.state === 'RUNNING', { after: h.events.of(id).indexOf(crashed) });
    expect(again).toMatchObject({ instance_id: first.instance_id, restarts: 1 });
    expect((await get(again.url!)).status).toBe(200);
    // The crashed container is gone; only the fresh one is left.
    const handles = (await h.handles()).filter((x) => x.includes(first.instance_id));
    expect(handles).toEqual([`dwa-${first.instance_id}-1`]);
    await stopApp(id);
  });

  it.concurrent('answers a start that this host could never hold with CRASHED naming why, and takes it off the queue', async () => {
    const id = appId('too-big');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 8192, instances: 2 });
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED' && e.index === 1);
    expect(crashed.reason).toBe(
      'cannot run here: 2 instances of 8192 MB memory and 1024 MB disk need more than this host has in all ' +
        '(4096 MB memory, 16384 MB disk); ask for less memory, disk or instances',
    );
    expect(h.events.of(id).map((e) => [e.index, e.state])).toEqual(
      expect.arrayContaining([
        [0, 'CRASHED'],
        [1, 'CRASHED'],
      ]),
    );
    expect(h.events.of(id).some((e) => e.state === 'STARTING')).toBe(false);
    expect(log.entries.some((e) => e.message.startsWith('No room') && e.app_id === id)).toBe(false);
    expect((await get(`http://${agent.apiAddress}/v1/apps/${id}`)).status).toBe(404);
  });

  it.concurrent('stops on a StopRequest: STOPPED, and the container is gone from wardend', async () => {
    const id = appId('stopped');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64, instances: 2 });
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 1);
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 0);
    const ids = new Set(h.events.of(id).map((e) => e.instance_id));
    expect((await h.handles()).filter((x) => [...ids].some((i) => x.includes(i)))).toHaveLength(2);
    const [one] = ids;
    await h.send({ kind: 'stop', app_id: id, instance_id: one });
    expect(await h.events.waitFor(id, (e) => e.state === 'STOPPED')).toMatchObject({ instance_id: one, reason: 'stopped' });
    expect((await h.handles()).filter((x) => x.includes(one))).toEqual([]);
    expect((await apiJson(`/v1/apps/${id}`)).instances).toHaveLength(1);
    await stopApp(id);
    expect((await h.handles()).filter((x) => [...ids].some((i) => x.includes(i)))).toEqual([]);
    expect((await fetch(`http://${agent.apiAddress}/v1/apps/${id}`)).status).toBe(404);
  });

  it.concurrent('starts nothing twice when the same StartRequest arrives twice, at once and later', async () => {
    const id = appId('dup');
    const request = { kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64, instances: 2 };
    await Promise.all([h.send(request), h.send(request)]);
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 0);
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 1);
    await h.send(request);
    await until('the start queue to empty', async () => (await queueEmpty(h.stack.config.queues.start)) || undefined);
    await new Promise((r) => setTimeout(r, 500));
    const states = h.events.of(id);
    expect(states.filter((e) => e.state === 'STARTING')).toHaveLength(2);
    const ids = [...new Set(states.map((e) => e.instance_id))];
    expect(ids).toHaveLength(2);
    expect((await h.handles()).filter((x) => ids.some((i) => x.includes(i)))).toHaveLength(2);
    await stopApp(id);
  });

  it.concurrent('reports a failed health check as CRASHED with the reason and the logs, then tries again', async () => {
    const id = appId('deaf');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.deaf, memory: 64, health_check_timeout: 2 });
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED');
    expect(crashed.reason).toBe('health check timed out after 2 s');
    expect(crashed.logs_tail).toContain('starting up');
    expect(crashed.logs_tail).toContain('deliberately not listening');
    expect(h.events.of(id).some((e) => e.state === 'RUNNING')).toBe(false);
    await h.events.waitFor(id, (e) => e.state === 'STARTING' && e.restarts === 1);
    // recycling the container closes its watcher on purpose: that is no lost wardend
    const instance = crashed.instance_id;
    await new Promise((r) => setTimeout(r, 1500));
    expect(log.entries.filter((e) => e.instance_id === instance && /Lost wardend/.test(e.message))).toEqual([]);
    await stopApp(id);
  });

  it.concurrent('reports an instance killed for memory as CRASHED "out of memory"', async () => {
    const id = appId('greedy');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.greedy, memory: 48, health_check: { type: 'none' } });
    const crashed = await h.events.waitFor(id, (e) => e.state === 'CRASHED');
    expect(crashed.reason).toBe('out of memory');
    expect(crashed.logs_tail).toContain('allocating');
    await stopApp(id);
  });

  it.concurrent('logs and drops a malformed message, and goes on serving', async () => {
    const id = appId('after-bad');
    await h.send('{not json');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, instances: 1000 });
    await h.send({ kind: 'launch', app_id: id });
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64 });
    await h.events.waitFor(id, (e) => e.state === 'RUNNING');
    const errors = await until('three malformed messages logged', () => {
      const bad = log.entries.filter((e) => e.level === 'error' && e.message.startsWith('Malformed message'));
      return bad.length >= 3 ? bad : undefined;
    });
    const reasons = errors.map((e) => e.error as string);
    expect(reasons).toContainEqual(expect.stringMatching(/^the body is not JSON: /));
    expect(reasons).toContain('instances: Too big: expected number to be <=100');
    expect(reasons).toContain('"kind" must be "start" or "stop", not "launch"');
    expect(h.events.of(id).filter((e) => e.state === 'STARTING')).toHaveLength(1);
    await stopApp(id);
  });

  it.concurrent('answers a malformed start request on its reply_to, with why, and starts nothing', async () => {
    const id = appId('bad-reply');
    const { QueueUrl } = await sqsClient(h.stack.config).send(new CreateQueueCommand({ QueueName: `reply-${id}` }));
    const replies = new EventReader(h.stack, QueueUrl!);
    try {
      await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 1, reply_to: QueueUrl });
      const answer = await replies.waitFor(id, (e) => e.state === 'CRASHED');
      expect(answer).toMatchObject({ instance_id: '', index: -1, port: null, url: null, reason: 'Invalid start request: memory: Too small: expected number to be >=16' });
      // The same request made right is taken: the refusal left nothing behind.
      await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64, reply_to: QueueUrl });
      await replies.waitFor(id, (e) => e.state === 'RUNNING');
      await h.events.waitFor(id, (e) => e.state === 'RUNNING');
      expect(replies.of(id).map((e) => e.state)).toEqual(['CRASHED', 'STARTING', 'RUNNING']);
      expect(h.events.of(id).map((e) => e.state)).toEqual(['STARTING', 'RUNNING']);
    } finally {
      await replies.stop();
    }
    await stopApp(id);
  });

  it.concurrent("sends every state to the request's reply_to queue too", async () => {
    const id = appId('reply');
    const { QueueUrl } = await sqsClient(h.stack.config).send(new CreateQueueCommand({ QueueName: `reply-${id}` }));
    const replies = new EventReader(h.stack, QueueUrl!);
    try {
      await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64, reply_to: QueueUrl });
      await replies.waitFor(id, (e) => e.state === 'RUNNING');
      await h.send({ kind: 'stop', app_id: id });
      await replies.waitFor(id, (e) => e.state === 'STOPPED');
      expect(replies.of(id).map((e) => e.state)).toEqual(['STARTING', 'RUNNING', 'STOPPED']);
      expect(h.events.of(id).map((e) => e.state)).toEqual(['STARTING', 'RUNNING', 'STOPPED']);
    } finally {
      await replies.stop();
    }
  });

  it.concurrent('replaces instances running another droplet, and stops indices beyond the count', async () => {
    const id = appId('replace');
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.hello, memory: 64, instances: 2 });
    await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 1);
    const old0 = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 0);
    const old1 = h.events.of(id).find((e) => e.state === 'RUNNING' && e.index === 1)!;
    await h.send({ kind: 'start', app_id: id, droplet_uri: droplets.nodeHello, memory: 64, instances: 1 });
    const scaled = await h.events.waitFor(id, (e) => e.state === 'STOPPED' && e.instance_id === old1.instance_id);
    expect(scaled.reason).toBe('scaled down');
    const fresh = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.droplet_uri === droplets.nodeHello);
    const replaced = await h.events.waitFor(id, (e) => e.state === 'STOPPED' && e.instance_id === old0.instance_id);
    expect(replaced.reason).toBe('replaced');
    expect((await get(fresh.url!)).body).toBe('Hello from node (undefined)\n');
    const app = await apiJson(`/v1/apps/${id}`);
    expect(app).toMatchObject({ droplet_uri: droplets.nodeHello, instances: [{ instance_id: fresh.instance_id, state: 'RUNNING' }] });
    await stopApp(id);
  });

  it.concurrent('serves apps, instances and logs over its API', async () => {
    const id = appId('api');
    await h.send({ kind: 'start', app_id: id, name: 'api-app', droplet_uri: droplets.hello, memory: 64, disk: 256, instances: 2, environment: ['GREETING=hi'] });
    const r0 = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 0);
    const r1 = await h.events.waitFor(id, (e) => e.state === 'RUNNING' && e.index === 1);
    expect((await get(r0.url!)).body).toBe(`hello from ${r0.port} 0 hi\n`);
    expect((await get(r1.url!)).body).toBe(`hello from ${r1.port} 1 hi\n`);
    expect(await apiJson('/v1/healthz')).toEqual({ ok: true });
    const listed = (await apiJson('/v1/apps')).apps.find((a: { app_id: string }) => a.app_id === id);
    expect(listed).toMatchObject({ app_id: id, name: 'api-app', droplet_uri: droplets.hello, memory: 64, disk: 256 });
    expect(listed.instances.map((i: { index: number }) => i.index).sort()).toEqual([0, 1]);
    for (const i of listed.instances) {
      expect(i).toMatchObject({ state: 'RUNNING', app_id: id });
      expect(i.handle).toBe(`dwa-${i.instance_id}-0`);
      expect(Date.parse(i.started_at)).toBeGreaterThan(0);
    }

    const one = await get(`http://${agent.apiAddress}/v1/apps/${id}/logs?stream=stdout&index=1`);
    expect(one).toEqual({ status: 200, body: `listening on ${r1.port}\n` });
    const both = (await get(`http://${agent.apiAddress}/v1/apps/${id}/logs?stream=stdout&lines=5`)).body.split('\n').filter(Boolean).sort();
    expect(both).toEqual([`[0] listening on ${r0.port}`, `[1] listening on ${r1.port}`]);
    expect((await get(`http://${agent.apiAddress}/v1/apps/${id}/logs?stream=nope`)).status).toBe(400);
    expect((await get(`http://${agent.apiAddress}/v1/apps/${id}/logs?index=7`)).status).toBe(404);
    expect((await get(`http://${agent.apiAddress}/v1/apps/nope-${id}`)).status).toBe(404);

    // follow: what the app writes later arrives on the open response
    const controller = new AbortController();
    const res = await fetch(`http://${agent.apiAddress}/v1/apps/${id}/logs?stream=stdout&index=0&follow=1&lines=1`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let seen = '';
    const read = async (want: string) => {
      while (!seen.includes(want)) seen += new TextDecoder().decode((await reader.read()).value);
    };
    await read(`listening on ${r0.port}`);
    const handle = listed.instances.find((i: { index: number }) => i.index === 0).handle;
    await h.runIn(handle, 'echo "a later line" >> /home/vcap/logs/stdout.log');
    await read('a later line');
    controller.abort();
    // the tail in the container ends with the response
    await until('the tail to end', async () => ((await h.runIn(handle, 'pgrep -x tail || true')).stdout.trim() === '' ? true : undefined));
    await stopApp(id);
  });
});

async function apiJson(path: string): Promise<any> {
  const res = await fetch(`http://${agent.apiAddress}${path}`);
  expect(res.status).toBe(200);
  return res.json();
}

/** Stops every instance of the app and waits for each one's STOPPED. */
async function stopApp(id: string): Promise<void> {
  await h.send({ kind: 'stop', app_id: id });
  const allStopped = () => {
    const states = h.events.of(id);
    return new Set(states.map((e) => e.instance_id)).size === states.filter((e) => e.state === 'STOPPED').length;
  };
  await until(`${id} to stop`, () => (allStopped() ? true : undefined), 30_000);
}

async function queueEmpty(queueUrl: string): Promise<boolean> {
  const { Attributes } = await sqsClient(h.stack.config).send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Attributes?.ApproximateNumberOfMessages === '0' && Attributes?.ApproximateNumberOfMessagesNotVisible === '0';
}
