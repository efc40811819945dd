/**
 * The acceptance path of the foundation: `dropwarden up --no-demo` running, then `stage`,
 * `config --json`, and an upstream service that knows only what `config --json` prints.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, ListQueuesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagingResult } from '../../contracts/staging.ts';
import { CLI, type RunningUp, runCli, startUp } from '../support/cli.ts';
import { until } from '../support/processes.ts';
import { zipTree } from '../support/zip.ts';

const APP = new URL('../../samples/hello-python', import.meta.url).pathname;
let up: RunningUp;
let tmp: string;

/**
 * A buildpack whose compile says it waits, then waits for a file the test creates only once the
 * CLI has shown that line: so the staging cannot end before the live log is seen. The wait is
 * bounded (a safety stop for a broken live log, failing the staging).
 */
function writeWaitingBuildpack(dir: string, go: string): void {
  const scripts: Record<string, string> = {
    detect: '[ -f "$1/wait-for-go.txt" ] || exit 1\necho Waiting',
    compile: `echo "-----> Waiting buildpack: waiting for the go file"\nfor _ in $(seq 400); do [ -e ${JSON.stringify(go)} ] && break; sleep 0.1; done\n[ -e ${JSON.stringify(go)} ] || { echo "no go file after 40 s" >&2; exit 1; }\necho "-----> Waiting buildpack: going"`,
    release: "printf -- '---\\ndefault_process_types:\\n  web: exec python3 -m http.server \\x24PORT\\n'",
  };
  mkdirSync(join(dir, 'bin'), { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(dir, 'bin', name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dw-cli-'));
  // The go file lies in the buildpack's own directory: the staging sandbox hides the rest of /tmp from app code.
  writeWaitingBuildpack(join(tmp, 'waiting-buildpack'), join(tmp, 'waiting-buildpack', 'go'));
  up = await startUp([], { partsEnv: { DROPWARDEN_BUILDPACKS: join(tmp, 'waiting-buildpack') } });
});
afterAll(async () => {
  await up?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as StagingResult;

describe('dropwarden stage', () => {
  it('stages a directory, prints the StagingResult and downloads a droplet with the documented layout', async () => {
    const out = join(tmp, 'd.tgz');
    const run = await runCli(['stage', APP, '--command', 'python3 app.py', '--droplet-out', out, '--json'], up.env);
    expect(run.stderr).toContain('Downloading application');
    expect(run.code).toBe(0);
    const result = lastJson(run.stdout);
    expect(result.droplet).toMatchObject({ uri: expect.stringMatching(/^s3:\/\/droplets\/hello-python\/[0-9a-f]{64}\.tgz$/), size: expect.any(Number) });
    expect(result.droplet!.sha256).toMatch(/^[0-9a-f]{64}$/);
    const listing = execFileSync('tar', ['tzf', out], { encoding: 'utf8' }).split('\n');
    for (const entry of ['./startup', './stop', './app/', './logs/', './tmp/', './staging_info.json']) expect(listing).toContain(entry);
    const info = JSON.parse(execFileSync('tar', ['xzOf', out, './staging_info.json'], { encoding: 'utf8' }));
    expect(info).toMatchObject({ framework: 'standalone', start_command: 'python3 app.py', detected: true });
  });

  it('shows the staging log live, while the staging runs', async () => {
    const app = join(tmp, 'waiting-app');
    mkdirSync(app);
    writeFileSync(join(app, 'wait-for-go.txt'), 'go\n');
    const go = join(tmp, 'waiting-buildpack', 'go');
    const child = spawn(process.execPath, [CLI, 'stage', app, '--json'], { env: { ...process.env, ...up.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => stdout.push(l));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // What the CLI had shown when the buildpack's waiting line came, before the go file exists.
    const shownBeforeGo = await new Promise<string[]>((resolve) => {
      const lines: string[] = [];
      createInterface({ input: child.stderr! }).on('line', (l) => {
        lines.push(l);
        if (l.includes('Waiting buildpack: waiting for the go file') && !existsSync(go)) {
          resolve([...lines]);
          writeFileSync(go, '');
        }
      });
      void exited.then(() => resolve(lines));
    });
    expect(await exited).toBe(0);
    expect(shownBeforeGo.join('\n')).toContain('Downloading application');
    expect(shownBeforeGo.at(-1)).toContain('Waiting buildpack: waiting for the go file');
    expect(shownBeforeGo.join('\n')).not.toContain('Waiting buildpack: going');
    const result = lastJson(stdout.join('\n'));
    expect(result.error).toBeUndefined();
    expect(result.task_log).toContain('Waiting buildpack: going');
  });

  it('gives the same droplet sha256 when the same directory is staged twice', async () => {
    const a = await runCli(['stage', APP, '--command', 'python3 app.py', '--app-id', 'same', '--json'], up.env);
    const b = await runCli(['stage', APP, '--command', 'python3 app.py', '--app-id', 'same', '--json'], up.env);
    expect(lastJson(a.stdout).droplet!.sha256).toBe(lastJson(b.stdout).droplet!.sha256);
  });

  it('exits 1 with the documented error for a hostile archive', async () => {
    const zip = join(tmp, 'evil.zip');
    const bytes = (await zipTree({ 'qq/qq/qq/etc/passwd': 'root::0:0::/:/bin/sh\n' })).toString('latin1').replaceAll('qq/qq/qq/etc/passwd', '../../../etc/passwd');
    writeFileSync(zip, Buffer.from(bytes, 'latin1'));
    const run = await runCli(['stage', zip, '--command', 'true', '--json'], up.env);
    expect(run.code).toBe(1);
    expect(lastJson(run.stdout).error).toBe('Staging task failed:\n Failed unpacking app: entry escapes the app root: ../../../etc/passwd');
    expect(run.stderr).toContain('Failed unpacking app: entry escapes the app root');
  });

  it('exits 2 on a usage error', async () => {
    const run = await runCli(['stage', join(tmp, 'does-not-exist')], up.env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/does not exist/);
  });
});

describe('an upstream service that knows only `config --json`', () => {
  it('gets exactly one result per request_id, none retried forever', async () => {
    const cfgRun = await runCli(['config', '--json'], up.env);
    expect(cfgRun.code).toBe(0);
    const cfg = JSON.parse(cfgRun.stdout);
    expect(Object.keys(cfg.queues).sort()).toEqual(['events', 'results', 'staging', 'staging_dlq', 'start']);
    expect(Object.keys(cfg.buckets).sort()).toEqual(['apps', 'cache', 'droplets']);
    const where = { region: cfg.region, endpoint: cfg.endpoint, credentials: { accessKeyId: 'any', secretAccessKey: 'any' } };
    const s3 = new S3Client({ ...where, forcePathStyle: true });
    const sqs = new SQSClient(where);
    await s3.send(new PutObjectCommand({ Bucket: cfg.buckets.apps, Key: 'up/app.zip', Body: await zipTree({ 'app.py': 'print(1)\n' }) }));
    const { QueueUrl: replies } = await sqs.send(new CreateQueueCommand({ QueueName: 'upstream-replies' }));
    const send = (body: unknown) =>
      sqs.send(new SendMessageCommand({ QueueUrl: cfg.queues.staging, MessageBody: typeof body === 'string' ? body : JSON.stringify(body) }));
    const good = {
      request_id: 'dup',
      app_id: 'up',
      download_uri: `s3://${cfg.buckets.apps}/up/app.zip`,
      reply_to: replies,
      properties: { meta: { command: 'python3 app.py' } },
    };
    const junk = await send('<<not json>>');
    await send({ request_id: 'no-uri', app_id: 'up', reply_to: replies });
    await send({ ...good, request_id: 'no-zip', download_uri: `s3://${cfg.buckets.apps}/up/missing.zip` });
    await send({ ...good, request_id: 'cobol', properties: { framework: 'cobol' } });
    await send(good);
    await send(good);

    const collect = async (queueUrl: string, ms: number) => {
      const got: StagingResult[] = [];
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        got.push(...(out.Messages ?? []).map((m) => JSON.parse(m.Body!) as StagingResult));
      }
      return got;
    };
    const [onReplies, onResults] = await Promise.all([collect(replies!, 12_000), collect(cfg.queues.results, 12_000)]);
    const count = (id: string) => [...onReplies, ...onResults].filter((r) => r.request_id === id).length;
    expect(onResults.filter((r) => r.request_id === junk.MessageId)).toHaveLength(1);
    for (const id of ['no-uri', 'no-zip', 'cobol', 'dup']) expect(count(id), id).toBe(1);
    const byId = Object.fromEntries(onReplies.map((r) => [r.request_id, r]));
    expect(byId['no-uri'].error).toMatch(/Invalid staging request: .*download_uri/);
    expect(byId['no-zip'].error).toMatch(/Failed downloading app: .* does not exist/);
    expect(byId.cobol.error).toMatch(/Staging plugin failed: unknown framework "cobol"/);
    expect(byId.dup.droplet).toBeDefined();
    // Nothing left on the staging queue, in flight included (a ReceiveMessage would not see those).
    await until(
      'the staging queue empty, in flight included',
      async () => {
        const { Attributes: a } = await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: cfg.queues.staging,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        return a?.ApproximateNumberOfMessages === '0' && a?.ApproximateNumberOfMessagesNotVisible === '0' ? true : undefined;
      },
      15_000,
    );
  });

  it('deletes its private reply queue when interrupted with Ctrl-C', async () => {
    const state = JSON.parse(readFileSync(join(up.env.DROPWARDEN_STATE_DIR!, 'stack.json'), 'utf8'));
    const worker = state.parts.stager as number;
    const cfg = state.config;
    const sqs = new SQSClient({ region: cfg.region, endpoint: cfg.endpoint, credentials: { accessKeyId: 'any', secretAccessKey: 'any' } });
    const replyQueues = async () => (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'dropwarden-cli-' }))).QueueUrls ?? [];
    // A stopped worker keeps the CLI waiting on its reply queue for as long as the test needs.
    process.kill(worker, 'SIGSTOP');
    try {
      const before = new Set(await replyQueues());
      const child = spawn(process.execPath, [CLI, 'stage', APP, '--command', 'python3 app.py'], { env: { ...process.env, ...up.env }, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let mine: string | undefined;
      for (const deadline = Date.now() + 20_000; !mine && Date.now() < deadline; ) {
        mine = (await replyQueues()).find((q) => !before.has(q));
        if (!mine) await new Promise((r) => setTimeout(r, 100));
      }
      expect(mine).toBeDefined();
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(await replyQueues()).not.toContain(mine);
    } finally {
      process.kill(worker, 'SIGCONT');
    }
  });
});
