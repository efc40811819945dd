/**
 * Running a droplet, done as an upstream service would: a StartRequest on the start queue
 * with a private reply_to queue, then the agent's InstanceStates on it until every instance
 * is RUNNING (or one CRASHED). Stopping: a StopRequest, then the agent's API until the
 * instances are STOPPED.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { type HealthCheck, INVALID_START_REQUEST, InstanceState, REJECTED_INDEX, StartRequest, type StopRequest } from '../contracts/instances.ts';
import { sqsClient } from '../lib/aws/clients.ts';
import type { StackConfig } from '../lib/stack-config.ts';
import type { AgentApi, AgentInstance } from './agent-api.ts';
import { withReplyQueue } from './reply-queue.ts';

export interface StartOptions {
  appId: string;
  dropletUri: string;
  instances?: number;
  /** MB. */
  memory?: number;
  /** MB. */
  disk?: number;
  environment?: string[];
  healthCheck?: HealthCheck;
  /** Seconds the agent's health check may take. */
  healthCheckTimeout?: number;
  name?: string;
  /** Each InstanceState of this request, as it arrives. */
  onState?: (state: InstanceState) => void;
  /** How long to wait for every instance to be RUNNING (default 300 s). */
  timeoutSeconds?: number;
  /** Also asked every few seconds: an instance already running this droplet is not started again, so no state may arrive. */
  api?: AgentApi;
  /** Delete the reply queue and exit 130 on Ctrl-C (a command; not a long-running caller). */
  cleanUpOnSigint?: boolean;
}

export class AppCrashedError extends Error {
  override name = 'AppCrashedError';
  readonly state: InstanceState;
  constructor(state: InstanceState) {
    super(`instance ${state.index} of ${state.app_id} crashed: ${state.reason ?? 'no reason given'}`);
    this.state = state;
  }
}

/** The agent refused the StartRequest itself (contracts/instances.ts REJECTED_INDEX): nothing started. */
export class StartRejectedError extends Error {
  override name = 'StartRejectedError';
}

export class AppTimeoutError extends Error {
  override name = 'AppTimeoutError';
}

export class AppNotFoundError extends Error {
  override name = 'AppNotFoundError';
}

const API_POLL_MS = 2000;

/** The instances of `app` that run `dropletUri`, by index, from the agent's API. */
function runningFromApi(instances: AgentInstance[], appDroplet: string | null | undefined, dropletUri: string): Map<number, InstanceState> {
  const found = new Map<number, InstanceState>();
  for (const inst of instances) {
    if ((inst.droplet_uri ?? appDroplet) === dropletUri && inst.state === 'RUNNING') found.set(inst.index, inst);
  }
  return found;
}

/** Starts the droplet; resolves with every instance's RUNNING state, by index. */
export async function startApp(stack: StackConfig, opts: StartOptions): Promise<InstanceState[]> {
  const sqs = sqsClient(stack);
  const count = opts.instances ?? 1;
  const replyQueue = { name: `dropwarden-cli-start-${randomUUID()}`, cleanUpOnSigint: opts.cleanUpOnSigint };
  return withReplyQueue(sqs, replyQueue, async (replies) => {
    const request = StartRequest.parse({
      kind: 'start',
      app_id: opts.appId,
      droplet_uri: opts.dropletUri,
      instances: count,
      memory: opts.memory,
      disk: opts.disk,
      environment: opts.environment,
      health_check: opts.healthCheck,
      health_check_timeout: opts.healthCheckTimeout,
      name: opts.name,
      reply_to: replies.url,
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.start, MessageBody: JSON.stringify(request) }));

    const latest = new Map<number, InstanceState>();
    const allRunning = () => latest.size === count && [...latest.values()].every((s) => s.state === 'RUNNING');
    const timeout = opts.timeoutSeconds ?? 300;
    const deadline = Date.now() + timeout * 1000;
    let nextApiPoll = Date.now() + API_POLL_MS;
    while (Date.now() < deadline) {
      for (const body of await replies.receive({ waitSeconds: 1, max: 10 })) {
        const parsed = InstanceState.safeParse(body);
        if (!parsed.success) continue; // not an InstanceState: this private queue only ever gets the agent's
        const state = parsed.data;
        if (state.index === REJECTED_INDEX && state.state === 'CRASHED') throw new StartRejectedError(state.reason ?? INVALID_START_REQUEST);
        // The instance a new droplet replaces reports on the same queue: not ours.
        if (state.app_id !== request.app_id || state.index >= count || (state.droplet_uri && state.droplet_uri !== opts.dropletUri)) continue;
        latest.set(state.index, state);
        opts.onState?.(state);
        if (state.state === 'CRASHED') throw new AppCrashedError(state);
      }
      if (allRunning()) break;
      if (opts.api && Date.now() >= nextApiPoll) {
        nextApiPoll = Date.now() + API_POLL_MS;
        const app = await opts.api.app(request.app_id).catch(() => undefined);
        const running = app ? runningFromApi(app.instances, app.droplet_uri, opts.dropletUri) : new Map();
        if ([...Array(count).keys()].every((i) => running.has(i))) {
          for (const [i, s] of running) if (i < count && latest.get(i)?.state !== 'RUNNING') opts.onState?.(s);
          for (const [i, s] of running) if (i < count) latest.set(i, s);
          break;
        }
      }
    }
    if (!allRunning()) {
      const where = [...latest.values()].map((s) => `[${s.index}] ${s.state}`).join(', ') || 'no instance reported';
      throw new AppTimeoutError(`${request.app_id} was not running within ${timeout} s (${where}): is the agent running (dropwarden up)?`);
    }
    return [...latest.values()].sort((a, b) => a.index - b.index);
  });
}

export interface StopOptions {
  appId: string;
  /** Absent: every instance of the app. */
  instanceId?: string;
  api: AgentApi;
  timeoutSeconds?: number;
}

/** What one stopped instance ended as. */
export interface StoppedInstance {
  instance_id: string;
  index: number;
  state: string;
}

/** Sends a StopRequest and waits until the agent reports the instances STOPPED (or gone). */
export async function stopApp(stack: StackConfig, opts: StopOptions): Promise<StoppedInstance[]> {
  const app = await opts.api.app(opts.appId);
  if (!app) throw new AppNotFoundError(`the agent at ${opts.api.address} runs no app ${opts.appId} (see dropwarden apps)`);
  const targets = app.instances.filter((i) => !opts.instanceId || i.instance_id === opts.instanceId);
  if (!targets.length) throw new AppNotFoundError(`${opts.appId} has no instance ${opts.instanceId} (see dropwarden apps)`);
  const stop: StopRequest = { kind: 'stop', app_id: opts.appId, ...(opts.instanceId ? { instance_id: opts.instanceId } : {}) };
  await sqsClient(stack).send(new SendMessageCommand({ QueueUrl: stack.queues.start, MessageBody: JSON.stringify(stop) }));

  const timeout = opts.timeoutSeconds ?? 60;
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline) {
    const now = await opts.api.app(opts.appId);
    const byId = new Map((now?.instances ?? []).map((i) => [i.instance_id, i]));
    const states = targets.map((t) => ({ instance_id: t.instance_id, index: t.index, state: byId.get(t.instance_id)?.state ?? 'STOPPED' }));
    if (states.every((s) => s.state === 'STOPPED')) return states;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new AppTimeoutError(`${opts.appId} was not stopped within ${timeout} s: is the agent running (dropwarden up)?`);
}
