/**
 * The fleet view (README "fleet.ts"): the host publishes its free capacity where
 * `dropwarden hosts` reads it back.
 *
 * - On ECS (`DROPWARDEN_CLUSTER` set and the task metadata endpoint present): custom attributes
 *   of this host's container instance (CAPACITY_ATTRIBUTES). The container instance comes from
 *   the task metadata (`${ECS_CONTAINER_METADATA_URI_V4}/task` → `TaskARN`), then
 *   DescribeTasks (→ `containerInstanceArn`): the v4 metadata documents `Cluster` and `TaskARN`
 *   but no container instance. Calls are coalesced (the latest value wins, at most one
 *   PutAttributes per DROPWARDEN_CAPACITY_REPORT_SECONDS, default 5) and retried with backoff;
 *   failures are logged, never thrown. close() deletes the attributes: a host whose agent is
 *   gone shows no capacity.
 * - Elsewhere: `<agent dir>/host.json` (LocalHostRecord), rewritten atomically on
 *   every report and removed by close().
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DeleteAttributesCommand, DescribeTasksCommand, ECSClient, PutAttributesCommand } from '@aws-sdk/client-ecs';
import { EMULATOR_CREDENTIALS } from '../../lib/aws/clients.ts';
import { CAPACITY_ATTRIBUTES, type FreeCapacity } from '../../contracts/host-capacity.ts';
import { SETTING } from '../../contracts/settings.ts';
import { DEFAULT_AGENT_DIR } from './config.ts';
import { type AgentLogger, createAgentLogger } from './log.ts';

export interface CapacityReporter {
  /** Publishes (coalesced) the host's free capacity; resolves once it was sent or the attempt failed. Never rejects. */
  report(free: { memoryMb: number; diskMb: number; instances: number }): Promise<void>;
  /** Stops publishing and withdraws what was published. Never rejects. */
  close(): Promise<void>;
}

export const HOST_FILE = 'host.json';
const DEFAULT_INTERVAL_SECONDS = 5;
const MAX_BACKOFF_MS = 60_000;
const METADATA_TIMEOUT_MS = 2_000;

/** What the local reporter writes to `<agent dir>/host.json`. */
export interface LocalHostRecord {
  host: string;
  free_memory_mb: number;
  free_disk_mb: number;
  instances: number;
  updated_at: string;
}

export class FleetError extends Error {
  override name = 'FleetError';
}

export interface CapacityReporterOptions {
  env: NodeJS.ProcessEnv;
  region: string;
  endpoint?: string;
  /** Where host.json goes off ECS: the agent's `config.agentDir`; default DROPWARDEN_AGENT_DIR or its default. */
  agentDir?: string;
  /** The agent's logger; default a new one. */
  log?: AgentLogger;
}

export function createCapacityReporter(opts: CapacityReporterOptions): CapacityReporter {
  const { env } = opts;
  const logger = opts.log ?? createAgentLogger();
  const cluster = env[SETTING.cluster];
  const metadataUri = env.ECS_CONTAINER_METADATA_URI_V4;
  if (cluster && metadataUri) {
    const client = new ECSClient({
      region: opts.region,
      endpoint: opts.endpoint,
      // A stand-in endpoint (tests, emulators) accepts any credentials; on AWS the task role applies.
      credentials: opts.endpoint ? EMULATOR_CREDENTIALS : undefined,
    });
    return new EcsCapacityReporter(new EcsTarget(client, cluster, metadataUri, logger), intervalMs(env), logger);
  }
  if (cluster) {
    logger.warn('DROPWARDEN_CLUSTER is set but ECS_CONTAINER_METADATA_URI_V4 is not: not running as an ECS task, so capacity goes to host.json only');
  }
  return new LocalCapacityReporter(opts.agentDir ?? (env[SETTING.agentDir] || DEFAULT_AGENT_DIR), logger);
}

function intervalMs(env: NodeJS.ProcessEnv): number {
  const raw = env.DROPWARDEN_CAPACITY_REPORT_SECONDS;
  const seconds = raw === undefined || raw === '' ? DEFAULT_INTERVAL_SECONDS : Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new FleetError(`DROPWARDEN_CAPACITY_REPORT_SECONDS must be a number of seconds ≥ 0, not "${raw}"`);
  }
  return seconds * 1000;
}

/** Whole, non-negative numbers; undefined when a value is not a number at all. */
function normalize(free: FreeCapacity): FreeCapacity | undefined {
  const values = [free.memoryMb, free.diskMb, free.instances];
  if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) return undefined;
  const whole = (v: number) => Math.max(0, Math.floor(v));
  return { memoryMb: whole(free.memoryMb), diskMb: whole(free.diskMb), instances: whole(free.instances) };
}

const keyOf = (free: FreeCapacity) => `${free.memoryMb}/${free.diskMb}/${free.instances}`;

/** This host's container instance in ECS: finds it once, then puts and deletes its attributes. */
class EcsTarget {
  readonly client: ECSClient;
  readonly cluster: string;
  readonly metadataUri: string;
  private readonly logger: AgentLogger;
  private containerInstanceArn?: string;

  constructor(client: ECSClient, cluster: string, metadataUri: string, logger: AgentLogger) {
    this.client = client;
    this.cluster = cluster;
    this.metadataUri = metadataUri;
    this.logger = logger;
  }

  get known(): boolean {
    return this.containerInstanceArn !== undefined;
  }

  async put(free: FreeCapacity): Promise<void> {
    const targetId = await this.resolve();
    try {
      await this.client.send(
        new PutAttributesCommand({
          cluster: this.cluster,
          attributes: (Object.keys(CAPACITY_ATTRIBUTES) as Array<keyof FreeCapacity>).map((k) => ({
            name: CAPACITY_ATTRIBUTES[k],
            value: String(free[k]),
            targetType: 'container-instance',
            targetId,
          })),
        }),
      );
    } catch (err) {
      // The instance re-registered (new ARN) or this task moved: find it again next time.
      if ((err as Error).name === 'TargetNotFoundException') this.containerInstanceArn = undefined;
      throw err;
    }
  }

  async remove(): Promise<void> {
    if (!this.containerInstanceArn) return;
    await this.client.send(
      new DeleteAttributesCommand({
        cluster: this.cluster,
        attributes: Object.values(CAPACITY_ATTRIBUTES).map((name) => ({
          name,
          targetType: 'container-instance',
          targetId: this.containerInstanceArn,
        })),
      }),
    );
  }

  private async resolve(): Promise<string> {
    if (this.containerInstanceArn) return this.containerInstanceArn;
    const taskArn = await this.taskArn();
    const out = await this.client.send(new DescribeTasksCommand({ cluster: this.cluster, tasks: [taskArn] }));
    const arn = out.tasks?.[0]?.containerInstanceArn;
    if (!arn) {
      const why = out.failures?.[0] ? `${out.failures[0].reason ?? 'failure'} (${out.failures[0].arn ?? taskArn})` : 'no container instance in the answer';
      throw new FleetError(
        `DescribeTasks on cluster ${this.cluster} did not name this task's container instance: ${why}; is DROPWARDEN_CLUSTER the cluster this task runs in?`,
      );
    }
    this.containerInstanceArn = arn;
    this.logger.info('publishing free capacity as container instance attributes', { cluster: this.cluster, containerInstanceArn: arn });
    return arn;
  }

  private async taskArn(): Promise<string> {
    const url = `${this.metadataUri.replace(/\/+$/, '')}/task`;
    let body: { TaskARN?: unknown };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(METADATA_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as { TaskARN?: unknown };
    } catch (err) {
      throw new FleetError(`cannot read the ECS task metadata at ${url}: ${(err as Error).message}`);
    }
    if (typeof body.TaskARN !== 'string' || !body.TaskARN) throw new FleetError(`the ECS task metadata at ${url} has no TaskARN`);
    return body.TaskARN;
  }
}

/** Latest value wins: at most one call per interval; a failed call is retried after a growing pause. */
class EcsCapacityReporter implements CapacityReporter {
  private readonly target: EcsTarget;
  private readonly intervalMs: number;
  private readonly logger: AgentLogger;
  private latest?: FreeCapacity;
  private published?: string;
  private timer?: NodeJS.Timeout;
  private sending?: Promise<void>;
  private lastCallAt = -Infinity;
  private failures = 0;
  private lastError?: string;
  private closed = false;
  private waiters: Array<() => void> = [];

  constructor(target: EcsTarget, intervalMs: number, logger: AgentLogger) {
    this.target = target;
    this.intervalMs = intervalMs;
    this.logger = logger;
  }

  report(free: FreeCapacity): Promise<void> {
    const value = normalize(free);
    if (this.closed) return Promise.resolve();
    if (!value) {
      this.logger.warn('ignoring a free capacity that is not a number', { free });
      return Promise.resolve();
    }
    this.latest = value;
    if (keyOf(value) === this.published && !this.sending) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.schedule();
    return done;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    this.release();
    try {
      await this.target.remove();
    } catch (err) {
      this.logger.warn('could not withdraw the capacity attributes', { cluster: this.target.cluster, error: explain(err) });
    }
    this.target.client.destroy();
  }

  private schedule(): void {
    if (this.timer || this.sending || this.closed) return;
    const pause = this.failures === 0 ? this.intervalMs : Math.min(MAX_BACKOFF_MS, Math.max(this.intervalMs, 1000) * 2 ** (this.failures - 1));
    const due = Math.max(0, this.lastCallAt + pause - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().finally(() => {
        this.sending = undefined;
        if (this.latest && keyOf(this.latest) !== this.published) this.schedule();
        else this.release();
      });
    }, due);
  }

  private async send(): Promise<void> {
    const value = this.latest!;
    const waiters = this.waiters.splice(0);
    if (keyOf(value) === this.published) {
      waiters.forEach((resolve) => resolve());
      return;
    }
    this.lastCallAt = Date.now();
    try {
      await this.target.put(value);
      this.published = keyOf(value);
      if (this.failures > 0) this.logger.info('publishing free capacity again', { after: this.failures });
      this.failures = 0;
      this.lastError = undefined;
    } catch (err) {
      this.failures++;
      const message = explain(err);
      // One line per distinct failure, not one per retry.
      if (message !== this.lastError) this.logger.warn('could not publish free capacity; retrying', { cluster: this.target.cluster, error: message });
      this.lastError = message;
    } finally {
      waiters.forEach((resolve) => resolve());
    }
  }

  private release(): void {
    this.waiters.splice(0).forEach((resolve) => resolve());
  }
}

function explain(err: unknown): string {
  const e = err as Error;
  const hint =
    e?.name === 'AccessDeniedException'
      ? ' (the task role needs ecs:DescribeTasks, ecs:PutAttributes and ecs:DeleteAttributes on its cluster: see cdk/lib/container-hosts.ts)'
      : '';
  return `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}${hint}`;
}

/** Local: the one host's capacity in a small JSON file for `dropwarden hosts`. */
class LocalCapacityReporter implements CapacityReporter {
  private readonly dir: string;
  private readonly file: string;
  private readonly logger: AgentLogger;
  private chain: Promise<void> = Promise.resolve();
  private writes = 0;
  private closed = false;

  constructor(dir: string, logger: AgentLogger) {
    this.dir = dir;
    this.file = join(dir, HOST_FILE);
    this.logger = logger;
  }

  report(free: FreeCapacity): Promise<void> {
    const value = normalize(free);
    if (this.closed || !value) return Promise.resolve();
    const record: LocalHostRecord = {
      host: hostname(),
      free_memory_mb: value.memoryMb,
      free_disk_mb: value.diskMb,
      instances: value.instances,
      updated_at: new Date().toISOString(),
    };
    return this.enqueue(async () => {
      await mkdir(this.dir, { recursive: true });
      const tmp = `${this.file}.${process.pid}.${++this.writes}.tmp`;
      await writeFile(tmp, `${JSON.stringify(record)}\n`);
      await rename(tmp, this.file);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return this.enqueue(() => rm(this.file, { force: true }));
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step).catch((err) => {
      this.logger.warn('could not write the host capacity file', { file: this.file, error: explain(err) });
    });
    return this.chain;
  }
}

/** The local host's record, or undefined when no agent has written one. */
export function readLocalHost(dir: string): LocalHostRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, HOST_FILE), 'utf8')) as LocalHostRecord;
  } catch {
    return undefined;
  }
}
