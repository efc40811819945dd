/**
 * The fleet view: the agent's capacity reporter against a stand-in ECS control plane (a local
 * HTTP server speaking ECS's JSON protocol to the real @aws-sdk/client-ecs, and a task
 * metadata endpoint), `dropwarden hosts` against the same stand-in and locally, and the agent's
 * EMF metrics.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_AGENT_DIR } from '../../container-host/agent/config.ts';
import { type CapacityReporter, createCapacityReporter } from '../../container-host/agent/fleet.ts';
import { createAgentMetrics } from '../../container-host/agent/metrics.ts';
import { runCli } from '../support/cli.ts';
import { until } from '../support/processes.ts';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const CLUSTER = 'dw-test';
const TASK_ARN = `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${CLUSTER}/0f1e2d3c4b5a69788796a5b4c3d2e1f0`;
const instanceArn = (id: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/${CLUSTER}/${id}`;
const OURS = instanceArn('a1b2c3d4e5f60718293a4b5c6d7e8f90');
const OTHER = instanceArn('ffeeddccbbaa00998877665544332211');

interface Call {
  op: string;
  body: any;
  at: number;
}
interface Fault {
  status: number;
  type: string;
  message: string;
}

/** The few ECS operations the agent and `hosts` use, with the state they change. */
class EcsStandIn {
  readonly calls: Call[] = [];
  readonly faults = new Map<string, Fault[]>();
  /** Custom attributes by container instance ARN. */
  readonly attributes = new Map<string, Map<string, string>>([
    [OURS, new Map()],
    [OTHER, new Map()],
  ]);
  /** Which container instance a task runs on (what DescribeTasks answers). */
  taskHost = new Map([[TASK_ARN, OURS]]);
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const op = String(req.headers['x-amz-target'] ?? '')
          .split('.')
          .at(-1)!;
        const body = JSON.parse(text || '{}');
        this.calls.push({ op, body, at: Date.now() });
        const reply = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${this.calls.length}` });
          res.end(JSON.stringify(payload));
        };
        const fault = this.faults.get(op)?.shift();
        if (fault) return reply(fault.status, { __type: fault.type, message: fault.message });
        if (body.cluster !== CLUSTER) return reply(400, { __type: 'ClusterNotFoundException', message: 'Cluster not found.' });
        reply(200, this.answer(op, body));
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** The next `times` calls of `op` (after those already failing) answer `fault`. */
  fail(op: string, times: number, fault: Fault): void {
    this.faults.set(op, [...(this.faults.get(op) ?? []), ...Array.from({ length: times }, () => fault)]);
  }

  callsOf(op: string): Call[] {
    return this.calls.filter((c) => c.op === op);
  }

  reset(): void {
    this.calls.length = 0;
    this.faults.clear();
    for (const attrs of this.attributes.values()) attrs.clear();
    this.taskHost = new Map([[TASK_ARN, OURS]]);
  }

  private answer(op: string, body: any): unknown {
    switch (op) {
      case 'DescribeTasks':
        return {
          tasks: body.tasks
            .filter((t: string) => this.taskHost.has(t))
            .map((t: string) => ({ taskArn: t, containerInstanceArn: this.taskHost.get(t), lastStatus: 'RUNNING' })),
          failures: body.tasks.filter((t: string) => !this.taskHost.has(t)).map((t: string) => ({ arn: t, reason: 'MISSING' })),
        };
      case 'PutAttributes':
        for (const a of body.attributes) this.attributes.get(a.targetId)!.set(a.name, a.value);
        return { attributes: body.attributes };
      case 'DeleteAttributes':
        for (const a of body.attributes) this.attributes.get(a.targetId)!.delete(a.name);
        return { attributes: body.attributes };
      case 'ListContainerInstances': {
        // One a page, so that callers must follow nextToken.
        const arns = [...this.attributes.keys()];
        const at = body.nextToken ? Number(body.nextToken) : 0;
        return { containerInstanceArns: [arns[at]], ...(at + 1 < arns.length ? { nextToken: String(at + 1) } : {}) };
      }
      case 'DescribeContainerInstances':
        return {
          containerInstances: body.containerInstances.map((arn: string) => ({
            containerInstanceArn: arn,
            ec2InstanceId: arn === OURS ? 'i-0aaa1111' : 'i-0bbb2222',
            status: arn === OURS ? 'ACTIVE' : 'DRAINING',
            agentConnected: true,
            runningTasksCount: arn === OURS ? 1 : 0,
            attributes: [
              { name: 'ecs.availability-zone', value: `${REGION}${arn === OURS ? 'a' : 'b'}` },
              { name: 'ecs.instance-type', value: 'm7i.large' },
              ...[...this.attributes.get(arn)!].map(([name, value]) => ({ name, value })),
            ],
          })),
          failures: [],
        };
      default:
        return {};
    }
  }
}

/** The task metadata endpoint v4 (`${ECS_CONTAINER_METADATA_URI_V4}/task`), as far as the agent reads it. */
async function startTaskMetadata(): Promise<{ url: string; server: Server; up: { value: boolean } }> {
  const up = { value: true };
  const server = createServer((req, res) => {
    if (!up.value || req.url !== '/v4/container-id/task') {
      res.writeHead(up.value ? 404 : 503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ Cluster: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${CLUSTER}`, TaskARN: TASK_ARN, Family: 'host', Revision: '3', LaunchType: 'EC2' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v4/container-id`, server, up };
}

const ecs = new EcsStandIn();
let metadata: Awaited<ReturnType<typeof startTaskMetadata>>;
let reporter: CapacityReporter | undefined;
let tmp: string;

beforeAll(async () => {
  await ecs.start();
  metadata = await startTaskMetadata();
  tmp = mkdtempSync(join(tmpdir(), 'dw-fleet-'));
});
afterAll(async () => {
  ecs.server?.close();
  metadata?.server.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  ecs.reset();
  metadata.up.value = true;
});
afterEach(async () => {
  await reporter?.close();
  reporter = undefined;
});

function ecsReporter(intervalSeconds = 0.3): CapacityReporter {
  reporter = createCapacityReporter({
    env: { DROPWARDEN_CLUSTER: CLUSTER, ECS_CONTAINER_METADATA_URI_V4: metadata.url, DROPWARDEN_CAPACITY_REPORT_SECONDS: String(intervalSeconds) },
    region: REGION,
    endpoint: ecs.url,
  });
  return reporter;
}

const put = (memory: string, disk: string, instances: string) => ({
  cluster: CLUSTER,
  attributes: [
    { name: 'dropwarden.free_memory_mb', value: memory, targetType: 'container-instance', targetId: OURS },
    { name: 'dropwarden.free_disk_mb', value: disk, targetType: 'container-instance', targetId: OURS },
    { name: 'dropwarden.instances', value: instances, targetType: 'container-instance', targetId: OURS },
  ],
});

describe('capacity reporter on ECS', () => {
  it('finds its container instance from the task metadata and puts the three attributes on it', async () => {
    await ecsReporter().report({ memoryMb: 3584, diskMb: 40960, instances: 2 });
    expect(ecs.calls.map((c) => [c.op, c.body])).toEqual([
      ['DescribeTasks', { cluster: CLUSTER, tasks: [TASK_ARN] }],
      ['PutAttributes', put('3584', '40960', '2')],
    ]);
    expect(Object.fromEntries(ecs.attributes.get(OURS)!)).toEqual({
      'dropwarden.free_memory_mb': '3584',
      'dropwarden.free_disk_mb': '40960',
      'dropwarden.instances': '2',
    });
  });

  it('coalesces bursts: a quiet reporter sends at once, then only the latest value, one interval later', async () => {
    // The reporter's clock is faked (its timers and Date.now); the ECS calls are real HTTP.
    const realSetTimeout = globalThis.setTimeout;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const r = ecsReporter(0.5);
    try {
      const first = r.report({ memoryMb: 100, diskMb: 1000, instances: 0 });
      await vi.advanceTimersByTimeAsync(0);
      await first;
      const burst = Promise.all([200, 300, 400, 500].map((mb, i) => r.report({ memoryMb: mb, diskMb: 1000, instances: i + 1 })));
      // Not before one interval has passed since the first call …
      await vi.advanceTimersByTimeAsync(499);
      // (a call sent too early would be in flight: give it real time to land)
      await new Promise((resolve) => realSetTimeout(resolve, 300));
      expect(ecs.callsOf('PutAttributes')).toHaveLength(1);
      // … and then once, with the latest value.
      await vi.advanceTimersByTimeAsync(1);
      await burst;
    } finally {
      vi.useRealTimers();
    }
    const puts = ecs.callsOf('PutAttributes');
    expect(puts.map((c) => c.body)).toEqual([put('100', '1000', '0'), put('500', '1000', '4')]);
    // The same value again is no call; DescribeTasks ran once for all of it.
    await r.report({ memoryMb: 500, diskMb: 1000, instances: 4 });
    expect(ecs.callsOf('PutAttributes')).toHaveLength(2);
    expect(ecs.callsOf('DescribeTasks')).toHaveLength(1);
  });

  it('sends whole, non-negative numbers and ignores values that are not numbers', async () => {
    const r = ecsReporter(0);
    await r.report({ memoryMb: 1023.9, diskMb: -5, instances: 0 });
    await r.report({ memoryMb: Number.NaN, diskMb: 1, instances: 1 });
    expect(ecs.callsOf('PutAttributes').map((c) => c.body)).toEqual([put('1023', '0', '0')]);
  });

  it('rides out throttling and server errors: never rejects, retries, and publishes the latest value', async () => {
    // More failures than the SDK's own attempts (3), so the reporter's retry has to carry it.
    ecs.fail('PutAttributes', 2, { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' });
    ecs.fail('PutAttributes', 2, { status: 500, type: 'ServerException', message: 'Service unavailable' });
    const r = ecsReporter(0.05);
    await expect(r.report({ memoryMb: 10, diskMb: 20, instances: 1 })).resolves.toBeUndefined();
    void r.report({ memoryMb: 11, diskMb: 20, instances: 1 });
    await until('the value after the failures', () => (ecs.attributes.get(OURS)!.get('dropwarden.free_memory_mb') === '11' ? true : undefined), 10_000);
    const puts = ecs.callsOf('PutAttributes');
    expect(puts.length).toBeGreaterThanOrEqual(5);
    expect(puts.at(-1)!.body).toEqual(put('11', '20', '1'));
  });

  it('keeps trying after an access error and a missing task metadata endpoint, without throwing', async () => {
    metadata.up.value = false;
    const r = ecsReporter(0.05);
    await expect(r.report({ memoryMb: 1, diskMb: 2, instances: 3 })).resolves.toBeUndefined();
    expect(ecs.calls).toEqual([]);
    metadata.up.value = true;
    ecs.fail('PutAttributes', 1, { status: 400, type: 'AccessDeniedException', message: 'not authorized to perform ecs:PutAttributes' });
    await until('published', () => (ecs.attributes.get(OURS)!.size === 3 ? true : undefined), 10_000);
    expect(ecs.callsOf('PutAttributes')).toHaveLength(2);
  });

  it('looks its container instance up again when ECS no longer knows it (re-registered host)', async () => {
    const r = ecsReporter(0.05);
    await r.report({ memoryMb: 1, diskMb: 1, instances: 1 });
    ecs.fail('PutAttributes', 1, { status: 400, type: 'TargetNotFoundException', message: 'Could not find container instance' });
    await r.report({ memoryMb: 2, diskMb: 2, instances: 2 });
    await until('published again', () => (ecs.attributes.get(OURS)!.get('dropwarden.instances') === '2' ? true : undefined), 10_000);
    expect(ecs.callsOf('DescribeTasks')).toHaveLength(2);
  });

  it('withdraws its attributes on close, and reports nothing after', async () => {
    const r = ecsReporter(0);
    await r.report({ memoryMb: 7, diskMb: 8, instances: 9 });
    await r.close();
    reporter = undefined;
    expect(ecs.callsOf('DeleteAttributes').map((c) => c.body)).toEqual([
      {
        cluster: CLUSTER,
        attributes: ['dropwarden.free_memory_mb', 'dropwarden.free_disk_mb', 'dropwarden.instances'].map((name) => ({
          name,
          targetType: 'container-instance',
          targetId: OURS,
        })),
      },
    ]);
    expect(ecs.attributes.get(OURS)!.size).toBe(0);
    await r.report({ memoryMb: 1, diskMb: 1, instances: 1 });
    expect(ecs.callsOf('PutAttributes')).toHaveLength(1);
  });
});

describe('dropwarden hosts on a cluster', () => {
  const env = () => ({
    DROPWARDEN_CLUSTER: CLUSTER,
    AWS_ENDPOINT_URL_ECS: ecs.url,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });

  it('--json: every container instance (all pages), with what its agent published', async () => {
    await ecsReporter(0).report({ memoryMb: 3584, diskMb: 40960, instances: 2 });
    const run = await runCli(['hosts', '--json'], env());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      cluster: CLUSTER,
      hosts: [
        {
          host: 'i-0aaa1111',
          ec2_instance_id: 'i-0aaa1111',
          container_instance_arn: OURS,
          status: 'ACTIVE',
          agent_connected: true,
          running_tasks: 1,
          availability_zone: `${REGION}a`,
          instance_type: 'm7i.large',
          free_memory_mb: 3584,
          free_disk_mb: 40960,
          instances: 2,
        },
        {
          host: 'i-0bbb2222',
          ec2_instance_id: 'i-0bbb2222',
          container_instance_arn: OTHER,
          status: 'DRAINING',
          agent_connected: true,
          running_tasks: 0,
          availability_zone: `${REGION}b`,
          instance_type: 'm7i.large',
          free_memory_mb: null,
          free_disk_mb: null,
          instances: null,
        },
      ],
    });
    expect(ecs.callsOf('ListContainerInstances')).toHaveLength(2);
  });

  it('prints a table for people', async () => {
    await ecsReporter(0).report({ memoryMb: 3584, diskMb: 40960, instances: 2 });
    const run = await runCli(['hosts'], env());
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`cluster ${CLUSTER}: 2 host(s)`);
    expect(lines[1].split(/\s{2,}/)).toEqual(['HOST', 'STATUS', 'ZONE', 'TYPE', 'TASKS', 'FREE MEM MB', 'FREE DISK MB', 'INSTANCES']);
    expect(lines[2].split(/\s+/)).toEqual(['i-0aaa1111', 'ACTIVE', `${REGION}a`, 'm7i.large', '1', '3584', '40960', '2']);
    expect(lines[3].split(/\s+/)).toEqual(['i-0bbb2222', 'DRAINING', `${REGION}b`, 'm7i.large', '0', '-', '-', '-']);
    expect(lines[4]).toMatch(/1 host\(s\) without published capacity/);
  });

  it('a cluster that does not exist is a usage error', async () => {
    const run = await runCli(['hosts', '--json'], { ...env(), DROPWARDEN_CLUSTER: 'nope' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no ECS cluster nope');
  });
});

describe('locally: the one host', () => {
  it('the local reporter writes host.json in the agent dir; hosts reads it; close removes it', async () => {
    const dir = join(tmp, 'agent');
    reporter = createCapacityReporter({ env: { DROPWARDEN_AGENT_DIR: dir }, region: REGION });
    await reporter.report({ memoryMb: 2048.7, diskMb: 9000, instances: 1 });
    expect(JSON.parse(readFileSync(join(dir, 'host.json'), 'utf8'))).toMatchObject({
      host: hostname(),
      free_memory_mb: 2048,
      free_disk_mb: 9000,
      instances: 1,
      updated_at: expect.any(String),
    });
    const run = await runCli(['hosts', '--json'], { DROPWARDEN_AGENT_DIR: dir });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      cluster: null,
      hosts: [
        {
          host: hostname(),
          ec2_instance_id: null,
          container_instance_arn: null,
          status: 'LOCAL',
          agent_connected: null,
          running_tasks: null,
          availability_zone: null,
          instance_type: null,
          free_memory_mb: 2048,
          free_disk_mb: 9000,
          instances: 1,
        },
      ],
    });
    await reporter.close();
    reporter = undefined;
    expect(existsSync(join(dir, 'host.json'))).toBe(false);
  });

  it('finds the agent dir of the running `up` stack from its state file', async () => {
    const stateDir = join(tmp, 'state');
    const dataDir = join(tmp, 'data');
    mkdirSync(join(dataDir, 'agent'), { recursive: true });
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(
      join(dataDir, 'agent', 'host.json'),
      JSON.stringify({ host: 'box', free_memory_mb: 5, free_disk_mb: 6, instances: 0, updated_at: new Date().toISOString() }),
    );
    // This test process stands in for the running `up` (the state file names a live pid).
    writeFileSync(join(stateDir, 'stack.json'), JSON.stringify({ pid: process.pid, started_at: '', data_dir: dataDir, config: {} }));
    const run = await runCli(['hosts'], { DROPWARDEN_STATE_DIR: stateDir });
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')[2].split(/\s+/)).toEqual(['box', 'LOCAL', '-', '-', '-', '5', '6', '0']);
  });

  it('without a running stack it says how to start one', async () => {
    // An agent of a container host really running here would be found instead: say so, never pass unchecked.
    expect(existsSync(`${DEFAULT_AGENT_DIR}/host.json`), `an agent runs on this machine (${DEFAULT_AGENT_DIR}); this test needs one without`).toBe(false);
    const run = await runCli(['hosts'], { DROPWARDEN_STATE_DIR: join(tmp, 'none') });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('npx dropwarden up');
  });
});

describe('agent metrics (EMF)', () => {
  it('FreeMemory/FreeDisk and StartsWaitingForRoom per Host, InstanceStates per State, namespace dropwarden, service agent', () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    });
    try {
      const metrics = createAgentMetrics();
      metrics.freeCapacity(1536, 20480);
      metrics.instanceState('RUNNING');
      metrics.instanceState('RUNNING');
      metrics.instanceState('CRASHED');
      metrics.startWaiting();
      metrics.startWaiting();
      metrics.flush();
      metrics.flush();
    } finally {
      write.mockRestore();
      vi.unstubAllEnvs();
    }
    const blobs = lines.map((l) => JSON.parse(l));
    const shape = (b: any) => ({ ...b._aws.CloudWatchMetrics[0], values: Object.fromEntries(Object.entries(b).filter(([k]) => k !== '_aws')) });
    const free = {
      Namespace: 'dropwarden',
      Dimensions: [['service', 'Host']],
      Metrics: [
        { Name: 'FreeMemory', Unit: 'Megabytes' },
        { Name: 'FreeDisk', Unit: 'Megabytes' },
      ],
      values: { service: 'agent', Host: hostname(), FreeMemory: 1536, FreeDisk: 20480 },
    };
    const states = (state: string, n: number) => ({
      Namespace: 'dropwarden',
      Dimensions: [['service', 'State']],
      Metrics: [{ Name: 'InstanceStates', Unit: 'Count' }],
      values: { service: 'agent', State: state, InstanceStates: n },
    });
    const waiting = {
      Namespace: 'dropwarden',
      Dimensions: [['service', 'Host']],
      Metrics: [{ Name: 'StartsWaitingForRoom', Unit: 'Count' }],
      values: { service: 'agent', Host: hostname(), StartsWaitingForRoom: 2 },
    };
    // The second flush repeats the free capacity (no gaps) and has no state changes or waits to count.
    expect(blobs.map(shape)).toEqual([free, states('RUNNING', 2), states('CRASHED', 1), waiting, free]);
  });
});
