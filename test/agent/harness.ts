/**
 * What the agent tests run on: a real wardend (child process, its own depot, socket, cgroup
 * parent, iptables prefix, subnet and port pool), the embedded S3+SQS, droplets staged and
 * packed by the stager's own phases, and an events reader.
 */
import { createCapacityReporter } from '../../container-host/agent/fleet.ts';
import { pluginEnvironmentFromEnv } from '../../functions/stager/config.ts';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { InstanceState } from '../../contracts/instances.ts';
import { Agent } from '../../container-host/agent/agent.ts';
import { agentConfigFromEnv, type AgentConfig, type AgentTuning } from '../../container-host/agent/config.ts';
import type { AgentLogger, LogFields } from '../../container-host/agent/log.ts';
import type { RouteRegistrar } from '../../container-host/agent/routes/registrar.ts';
import { pack } from '../../functions/stager/phases/pack.ts';
import { stage } from '../../functions/stager/phases/stage.ts';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import { stackConfigToEnv } from '../../lib/stack-config.ts';
import { startTestStack, type TestStack } from '../support/aws-stack.ts';
import { WardendProcess } from '../warden/integration/wardend.ts';
import { missingHostFeature } from '../warden/linux/helpers.ts';
import { removeWardenNetwork } from '../warden/linux/net-helpers.ts';

function agentSkipReason(): string | undefined {
  const missing = missingHostFeature();
  if (missing) return missing;
  try {
    execFileSync('iptables', ['-w', '-L', '-n'], { stdio: 'ignore' });
  } catch {
    return 'iptables does not work here (container networking needs it)';
  }
  if (!readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')) return 'no IPv4 forwarding here';
  return undefined;
}

export const skipReason = agentSkipReason();
if (skipReason) console.warn(`[agent] skipping the agent's integration tests: ${skipReason}`);

export interface LogEntry extends LogFields {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

/** A logger that keeps every entry (and prints errors and warnings when DEBUG_AGENT is set). */
export function memoryLogger(): AgentLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (message: string, fields: LogFields = {}) => {
      entries.push({ ...fields, level, message });
      if (process.env.DEBUG_AGENT) console.log(JSON.stringify({ level, message, ...fields }));
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Every InstanceState that reaches a queue, read (and deleted) in the background. */
export class EventReader {
  readonly events: InstanceState[] = [];
  readonly #stack: TestStack;
  readonly #queueUrl: string;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(stack: TestStack, queueUrl = stack.config.queues.events) {
    this.#stack = stack;
    this.#queueUrl = queueUrl;
    this.#loop = this.#read();
  }

  async #read(): Promise<void> {
    const sqs = sqsClient(this.#stack.config);
    while (this.#running) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: this.#queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 })).catch(() => ({ Messages: [] }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) continue;
      for (const m of messages) this.events.push(JSON.parse(m.Body!) as InstanceState);
      await sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }))
        .catch(() => undefined);
    }
  }

  of(appId: string): InstanceState[] {
    return this.events.filter((e) => e.app_id === appId);
  }

  /** The first event of `appId` (after the first `after` of them) that `match` accepts. */
  async waitFor(appId: string, match: (e: InstanceState) => boolean, opts: { after?: number; ms?: number } = {}): Promise<InstanceState> {
    const end = Date.now() + (opts.ms ?? 30_000);
    for (;;) {
      const found = this.of(appId)
        .slice(opts.after ?? 0)
        .find(match);
      if (found) return found;
      if (Date.now() > end) {
        throw new Error(`no matching event for ${appId} within ${opts.ms ?? 30_000} ms; got ${JSON.stringify(this.of(appId).map((e) => [e.state, e.reason]))}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

export interface AppSpec {
  /** Files of the app directory. */
  files: Record<string, string>;
  command: string;
}

export const HELLO_APP: AppSpec = {
  files: {
    'server.js': `const http = require('node:http');
http.createServer((req, res) => res.end('hello from ' + process.env.VCAP_APP_PORT + ' ' + JSON.parse(process.env.VCAP_APPLICATION).instance_index + ' ' + (process.env.GREETING || '') + '\\n'))
  .listen(Number(process.env.PORT), () => console.log('listening on ' + process.env.PORT));
`,
  },
  command: 'node server.js',
};

/** Writes output and waits forever without listening anywhere. */
export const DEAF_APP: AppSpec = {
  files: { 'deaf.js': "console.log('starting up');\nconsole.error('deliberately not listening');\nsetInterval(() => {}, 1000);\n" },
  command: 'node deaf.js',
};

/** Allocates until the memory limit kills it. */
export const GREEDY_APP: AppSpec = {
  files: {
    'greedy.js': "console.log('allocating');\nconst hoard = [];\nsetInterval(() => { for (let i = 0; i < 8; i++) hoard.push(Buffer.alloc(1 << 20, 1)); }, 10);\n",
  },
  command: 'node greedy.js',
};

const BIN = new URL('../../bin/dropwarden.js', import.meta.url).pathname;

/** A `dropwarden agent` process. */
export interface RunningAgent {
  child: ChildProcess;
  api: string;
  /** Every line it wrote (its JSON logs). */
  output: string[];
}

export class AgentHarness {
  readonly dir: string;
  readonly wardend: WardendProcess;
  readonly prefix: string;
  readonly pool: string;
  stack!: TestStack;
  events!: EventReader;
  readonly agents: Agent[] = [];
  readonly #children: ChildProcess[] = [];

  constructor(name: string, net: { prefix: string; pool: string; firstPort: number }) {
    this.dir = mkdtempSync(join(tmpdir(), `dw-agent-${name}-`));
    this.prefix = net.prefix;
    this.pool = net.pool;
    this.wardend = new WardendProcess(`agent-${name}`, {
      network: { pool: net.pool, prefix: net.prefix, portPool: { first: net.firstPort, size: 100 }, mtu: 1500 },
      disk: { maxBytes: 2 * 1024 ** 3, maxInodes: 100_000 },
    });
  }

  async start(): Promise<void> {
    [this.stack] = await Promise.all([startTestStack(), this.wardend.start()]);
    this.events = new EventReader(this.stack);
  }

  /** The agent's environment as `dropwarden agent` would read it. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...stackConfigToEnv(this.stack.config),
      DROPWARDEN_WARDEN_SOCKET: this.wardend.socket,
      DROPWARDEN_AGENT_DIR: join(this.dir, 'agent'),
      DROPWARDEN_AGENT_API: '127.0.0.1:0',
      DROPWARDEN_AGENT_MEMORY_MB: '4096',
      DROPWARDEN_AGENT_DISK_MB: '16384',
      DROPWARDEN_MAX_RESTARTS: '3',
      ...extra,
    };
  }

  config(extra: Record<string, string> = {}, tuning: Partial<AgentTuning> = {}): AgentConfig {
    return agentConfigFromEnv(this.env(extra), { restartBackoffFirstMs: 300, pollWaitSeconds: 2, ...tuning });
  }

  async startAgent(config = this.config(), log = memoryLogger(), registrar?: RouteRegistrar): Promise<{ agent: Agent; log: ReturnType<typeof memoryLogger> }> {
    const reporter = createCapacityReporter({ env: this.env(), region: config.region, endpoint: config.endpoint, agentDir: config.agentDir, log });
    const agent = new Agent(config, { log, reporter, registrar });
    this.agents.push(agent);
    await agent.start();
    return { agent, log };
  }

  /** `dropwarden agent` as a process with this harness's environment; resolves on its ready line. */
  async startAgentProcess(extra: Record<string, string> = {}): Promise<RunningAgent> {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', BIN, 'agent'], {
      env: { ...process.env, ...this.env(extra), POWERTOOLS_LOG_LEVEL: 'INFO' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.push(child);
    const output: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
    const ready = await new Promise<{ ready: boolean; api: string }>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        output.push(line);
        if (line.includes('"ready"')) resolve(JSON.parse(line));
      });
      child.once('exit', (code) => reject(new Error(`dropwarden agent exited (${code}) before ready: ${output.join('\n')}`)));
    });
    if (!ready.ready) throw new Error(`dropwarden agent's ready line says not ready: ${JSON.stringify(ready)}`);
    return { child, api: ready.api, output };
  }

  /** Signals an agent process (SIGTERM: a clean stop) and resolves with how it exited. */
  async stopAgentProcess(agent: RunningAgent, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string | null> {
    if (agent.child.exitCode !== null || agent.child.signalCode !== null) return agent.child.exitCode ?? agent.child.signalCode;
    const exited = new Promise<number | string | null>((resolve) => agent.child.once('exit', (code, sig) => resolve(code ?? sig)));
    agent.child.kill(signal);
    return exited;
  }

  /** Stages `app` with the standalone plugin, packs it, uploads it: its s3:// URI. */
  async droplet(name: string, app: AppSpec): Promise<string> {
    const work = mkdtempSync(join(this.dir, 'droplet-'));
    const dropletDir = join(work, 'droplet');
    mkdirSync(join(dropletDir, 'app'), { recursive: true });
    for (const [file, text] of Object.entries(app.files)) writeFileSync(join(dropletDir, 'app', file), text);
    const signal = new AbortController().signal;
    await stage({
      dropletDir,
      properties: { framework: 'standalone', meta: { command: app.command } },
      log: () => {},
      signal,
      plugins: pluginEnvironmentFromEnv(process.env),
    });
    const packed = await pack({ dropletDir, dest: join(work, 'droplet.tgz'), gzipLevel: 1, signal });
    const key = `${name}/${packed.sha256}.tgz`;
    await s3Client(this.stack.config).send(new PutObjectCommand({ Bucket: this.stack.config.buckets.droplets, Key: key, Body: readFileSync(packed.path) }));
    rmSync(work, { recursive: true, force: true });
    return `s3://${this.stack.config.buckets.droplets}/${key}`;
  }

  async send(body: unknown): Promise<void> {
    await sqsClient(this.stack.config).send(
      new SendMessageCommand({ QueueUrl: this.stack.config.queues.start, MessageBody: typeof body === 'string' ? body : JSON.stringify(body) }),
    );
  }

  /** The agent's containers on wardend. */
  async handles(): Promise<string[]> {
    const client = await this.wardend.client();
    try {
      const { handles = [] } = await client.call('List', {});
      return handles.map((h) => h.toString()).filter((h) => h.startsWith('dwa-'));
    } finally {
      client.close();
    }
  }

  /** A privileged `run` in a container (what an operator's `dropwarden warden run` does). */
  async runIn(handle: string, script: string): Promise<{ exit: number; stdout: string }> {
    const client = await this.wardend.client();
    try {
      const r = await client.call('Run', { handle: Buffer.from(handle), script, privileged: true });
      return { exit: r.exit_status ?? -1, stdout: r.stdout?.toString() ?? '' };
    } finally {
      client.close();
    }
  }

  async close(): Promise<void> {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(this.agents.map((a) => a.stop().catch(() => undefined)));
    await this.events?.stop();
    await this.wardend.cleanup();
    await removeWardenNetwork(this.prefix, this.pool).catch(() => undefined);
    await this.stack?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A flat fixture app of test/apps as a spec. */
export function fixtureApp(name: string, command: string): AppSpec {
  const dir = new URL(`../apps/${name}`, import.meta.url).pathname;
  return { files: Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')])), command };
}
