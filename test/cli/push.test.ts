/**
 * Running apps through the CLI on a running `dropwarden up`: `push` prints a URL that answers;
 * a killed app process shows up as CRASHED then RUNNING on the events queue (read with the AWS
 * SDK, as an upstream service reads it); `apps`, `logs`; `stop` leaves no container behind.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appsTable, table } from '../../cli/commands/apps.ts';
import { parseHealthCheck } from '../../cli/commands/push.ts';
import { UsageError } from '../../cli/errors.ts';
import type { InstanceState } from '../../contracts/instances.ts';
import { checkPrerequisites, realHost, PrerequisiteError } from '../../local/prerequisites.ts';
import { runtimesDir } from '../../plugins/java_web/bundle.ts';
import { type RunningUp, runCli, startUp } from '../support/cli.ts';
import { until } from '../support/processes.ts';

const NODE_APP = new URL('../apps/node-hello', import.meta.url).pathname;
const BROKEN_APP = new URL('../../samples/hello-python', import.meta.url).pathname;
const APPS = new URL('../apps/', import.meta.url).pathname;

/** A javax.servlet WAR (compiled against the Tomcat 9 bundle that `up` built, as a user's build would produce it). */
function buildJavaxWar(dir: string): string {
  const app = join(dir, 'war');
  cpSync(join(APPS, 'java-web-javax'), app, { recursive: true });
  const src = join(dir, 'HelloServlet.java');
  writeFileSync(src, readFileSync(join(APPS, 'java-servlet', 'HelloServlet.java'), 'utf8').replaceAll('jakarta.servlet', 'javax.servlet'));
  mkdirSync(join(app, 'WEB-INF', 'classes'), { recursive: true });
  execFileSync('javac', ['-cp', join(runtimesDir(process.env), 'tomcat9', 'lib', 'servlet-api.jar'), '-d', join(app, 'WEB-INF', 'classes'), src], { stdio: 'pipe' });
  execFileSync('zip', ['-qr', join(dir, 'hello-javax.war'), 'WEB-INF'], { cwd: app });
  return join(dir, 'hello-javax.war');
}

describe('push and apps, without a stack', () => {
  it('read --health-check as DESIGN §3.3 health checks', () => {
    expect(parseHealthCheck('port')).toEqual({ type: 'port' });
    expect(parseHealthCheck('none')).toEqual({ type: 'none' });
    expect(parseHealthCheck('http:/health')).toEqual({ type: 'http', path: '/health' });
    expect(() => parseHealthCheck('tcp')).toThrow(UsageError);
  });

  it('print instances as aligned columns', () => {
    expect(
      table([
        ['A', 'BB'],
        ['CCC', 'D'],
      ]),
    ).toBe('A    BB\nCCC  D');
    const text = appsTable(
      [
        {
          app_id: 'web',
          instances: [
            { app_id: 'web', instance_id: 'i1', index: 1, state: 'CRASHED', host: 'h', port: null, url: null, reason: 'x', timestamp: 't1' },
            { app_id: 'web', instance_id: 'i0', index: 0, state: 'RUNNING', host: 'h', port: 1, url: 'http://h:1', reason: null, timestamp: 't0', started_at: 's0' },
          ],
        },
      ],
      'http://{app}.localhost:8080',
    );
    expect(text.split('\n').map((l) => l.split(/\s+/))).toEqual([
      ['APP', 'ROUTE', 'INDEX', 'STATE', 'URL', 'INSTANCE', 'SINCE'],
      ['web', 'http://web.localhost:8080', '0', 'RUNNING', 'http://h:1', 'i0', 's0'],
      ['web', 'http://web.localhost:8080', '1', 'CRASHED', '-', 'i1', 't1'],
    ]);
    expect(
      appsTable([{ app_id: 'bare', instances: [] }])
        .split('\n')[1]
        .split(/\s+/),
    ).toEqual(['bare', '-', '-', '-', '-', '-', '-']);
  });
});

const host = checkPrerequisites(realHost(process.env));
const skip = host.problems.length || host.packages.length ? new PrerequisiteError(host).message : undefined;
if (skip) console.warn(`[cli/push] skipping the push tests: ${skip}`);

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

/** Host pids of the processes in the container `handle` that run exactly `argv`. */
function pidsIn(handle: string, argv: string[]): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${handle}\n`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${argv.join('\0')}\0`;
      } catch {
        return false;
      }
    });
}

describe.skipIf(skip)('dropwarden push, apps, logs, stop on a running up', () => {
  let up: RunningUp;
  let sqs: SQSClient;
  let eventsQueue: string;
  const events: InstanceState[] = [];

  /** Reads the events queue (deleting nothing: nobody else consumes it here) until `want` holds. */
  async function eventsUntil(what: string, want: (all: InstanceState[]) => boolean, ms = 60_000): Promise<InstanceState[]> {
    return until(
      what,
      async () => {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: eventsQueue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 3600 }));
        for (const m of out.Messages ?? []) events.push(JSON.parse(m.Body!) as InstanceState);
        return want(events) ? events : undefined;
      },
      ms,
    );
  }

  beforeAll(async () => {
    up = await startUp();
    const config = JSON.parse((await runCli(['config', '--json'], up.env)).stdout);
    sqs = new SQSClient({ region: config.region, endpoint: config.endpoint, credentials: { accessKeyId: 'any', secretAccessKey: 'any' } });
    eventsQueue = config.queues.events;
  }, 90_000);
  afterAll(async () => {
    sqs?.destroy();
    await up?.stop();
  });

  it('pushes a node app to a URL answering 200; a killed app is CRASHED then RUNNING again; stop removes its container', async () => {
    const push = await runCli(['push', NODE_APP, '--json'], up.env, 120_000);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('Starting 1 instance of node-hello');
    const pushed = lastJson(push.stdout);
    expect(pushed).toMatchObject({
      app_id: 'node-hello',
      url: expect.stringMatching(/^http:\/\/node-hello\.localhost:\d+$/),
      droplet: { uri: expect.stringMatching(/^s3:\/\//) },
    });
    expect(pushed.instances).toEqual([
      { instance_id: expect.any(String), state: 'RUNNING', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), host: '127.0.0.1' },
    ]);
    const res = await fetch(pushed.instances[0].url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello from node (production)\n');

    const listed = await runCli(['apps', '--json'], up.env);
    const app = lastJson(listed.stdout).apps.find((a: { app_id: string }) => a.app_id === 'node-hello');
    const [instance] = app.instances;
    expect(instance).toMatchObject({ state: 'RUNNING', index: 0, url: pushed.instances[0].url });
    expect((await runCli(['apps'], up.env)).stdout).toMatch(/node-hello\s+http:\/\/node-hello\.localhost:\d+\s+0\s+RUNNING\s+http:\/\/127\.0\.0\.1:\d+/);

    const logs = await runCli(['logs', 'node-hello', '--stream', 'stdout'], up.env);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/listening on \d+/);
    const noSuchIndex = await runCli(['logs', 'node-hello', '--index', '7'], up.env);
    expect(noSuchIndex.code).toBe(1);
    expect(noSuchIndex.stderr).toContain('app node-hello has no instance with index 7 on this host');

    const [pid] = pidsIn(instance.handle, ['node', 'server.js']);
    expect(pid, `no server.js in container ${instance.handle}`).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const seen = await eventsUntil('CRASHED then RUNNING on the events queue', (all) => {
      const ours = all.filter((e) => e.app_id === 'node-hello');
      const crashed = ours.findIndex((e) => e.state === 'CRASHED');
      return crashed >= 0 && ours.slice(crashed + 1).some((e) => e.state === 'RUNNING');
    });
    const ours = seen.filter((e) => e.app_id === 'node-hello');
    const crash = ours.find((e) => e.state === 'CRASHED')!;
    expect(crash.reason).toMatch(/exited with status|signal|137/);
    const again = ours.slice(ours.indexOf(crash)).find((e) => e.state === 'RUNNING')!;
    expect((await fetch(again.url!)).status).toBe(200);

    const now = lastJson((await runCli(['apps', '--json'], up.env)).stdout).apps.find((a: { app_id: string }) => a.app_id === 'node-hello');
    const handles: string[] = [instance.handle, ...now.instances.map((i: { handle: string }) => i.handle)];
    const stop = await runCli(['stop', 'node-hello', '--json'], up.env);
    expect(stop.code, stop.stderr).toBe(0);
    expect(lastJson(stop.stdout)).toEqual({ app_id: 'node-hello', instances: [expect.objectContaining({ index: 0, state: 'STOPPED' })] });
    const list = await runCli(['warden', 'list'], up.env);
    expect(list.code, list.stderr).toBe(0);
    for (const h of handles) expect(list.stdout).not.toContain(h);
  }, 180_000);

  it('pushes a WAR (javax.servlet) to a URL answering 200 from Tomcat 9, with no manual step on the stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dw-push-war-'));
    try {
      const push = await runCli(['push', buildJavaxWar(dir), '--app-id', 'hello-war', '--memory', '512', '--json'], up.env, 180_000);
      expect(push.code, push.stderr).toBe(0);
      const pushed = lastJson(push.stdout);
      expect(pushed.instances).toEqual([expect.objectContaining({ state: 'RUNNING' })]);
      const res = await fetch(pushed.instances[0].url);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^Hello from java_web on Apache Tomcat\/9\.0\./);
      expect((await runCli(['stop', 'hello-war'], up.env)).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);

  it('exits 1 with the reason and the last log lines when the app crashes at start', async () => {
    const run = await runCli(['push', BROKEN_APP, '--app-id', 'crasher', '--command', 'echo "cannot start: no config" >&2; exit 3', '--json'], up.env, 120_000);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('exited with status 3');
    expect(run.stderr).toContain('cannot start: no config');
    expect(lastJson(run.stdout).instances[0]).toMatchObject({ state: 'CRASHED', reason: expect.stringContaining('status 3') });
    await runCli(['stop', 'crasher'], up.env);
  }, 180_000);

  it('exits 2 on usage errors, 1 for an app it does not run', async () => {
    expect((await runCli(['push', NODE_APP, '--health-check', 'tcp'], up.env)).code).toBe(2);
    expect((await runCli(['push', NODE_APP, '--instances', '0'], up.env)).code).toBe(2);
    // A bad --timeout is a usage error before anything is staged or sent.
    const push = await runCli(['push', NODE_APP, '--timeout', 'soon'], up.env);
    expect(push.code).toBe(2);
    expect(push.stderr).toContain('--timeout soon: give a whole number');
    expect(push.stderr).not.toContain('Staging');
    const badStop = await runCli(['stop', 'no-such-app', '--timeout', 'abc'], up.env);
    expect(badStop.code).toBe(2);
    expect(badStop.stderr).toContain('--timeout abc: give a whole number');
    const stop = await runCli(['stop', 'no-such-app'], up.env);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toContain('runs no app no-such-app');
  });
});
