/**
 * The agent: composes wardend's client, the droplet cache, capacity, the event publisher, the
 * start-queue poller and the API. `start` adopts what wardend still holds, then polls; `stop`
 * stops polling and lets go of the instances, which keep running for the next agent.
 *
 * Requests are declarative per app and index (README "Semantics"), and every decision about
 * them is taken synchronously, so two copies of one request, however close together, cannot
 * both start an index.
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { INVALID_START_REQUEST, REJECTED_INDEX, type InstanceState, type StartRequest, type StopRequest } from '../../contracts/instances.ts';
import { s3Client, sqsClient } from '../../lib/aws/clients.ts';
import { WardenPool } from '../warden/client/index.ts';
import { type ApiApp, type RunningApi, startApi } from './api.ts';
import { Capacity } from './capacity.ts';
import type { AgentConfig } from './config.ts';
import { InstanceContainer } from './container.ts';
import { DropletCache } from './droplets.ts';
import { EventPublisher } from './events.ts';
import { type CapacityReporter, createCapacityReporter } from './fleet.ts';
import { Instance, type InstanceDeps } from './instance.ts';
import { type AgentLogger, createAgentLogger } from './log.ts';
import { type AgentMetrics, createAgentMetrics } from './metrics.ts';
import { StartQueuePoller } from './poller.ts';
import { NO_ROUTES, type RouteRegistrar, type RouteTarget } from './routes/registrar.ts';

export interface AgentParts {
  log?: AgentLogger;
  metrics?: AgentMetrics;
  reporter?: CapacityReporter;
  /** Where RUNNING instances are put so that their app's route reaches them (DESIGN §7); default none. */
  registrar?: RouteRegistrar;
}

interface App extends ApiApp {
  instances: Instance[];
}

/** wardend is not there or not answering: the agent cannot run. */
export class WardenUnavailableError extends Error {
  override name = 'WardenUnavailableError';
}

export class Agent {
  readonly config: AgentConfig;
  readonly capacity: Capacity;
  readonly #log: AgentLogger;
  readonly #metrics: AgentMetrics;
  readonly #reporter: CapacityReporter;
  readonly #warden: WardenPool;
  readonly #sqs: SQSClient;
  readonly #droplets: DropletCache;
  readonly #events: EventPublisher;
  readonly #poller: StartQueuePoller;
  readonly #apps = new Map<string, App>();
  readonly #deps: InstanceDeps;
  readonly #registrar: RouteRegistrar;
  #api?: RunningApi;
  #reportTimer?: NodeJS.Timeout;
  #stopped = false;

  constructor(config: AgentConfig, parts: AgentParts = {}) {
    this.config = config;
    this.#log = parts.log ?? createAgentLogger();
    this.#metrics = parts.metrics ?? createAgentMetrics();
    // Without one from the composition root, capacity goes to host.json only.
    this.#reporter =
      parts.reporter ??
      createCapacityReporter({
        env: {},
        region: config.region,
        endpoint: config.endpoint,
        agentDir: config.agentDir,
        log: this.#log,
      });
    this.capacity = new Capacity({ memoryMb: config.memoryMb, diskMb: config.diskMb });
    this.#warden = new WardenPool({ socketPath: config.wardenSocket, size: 8 });
    const where = { region: config.region, endpoint: config.endpoint };
    this.#sqs = sqsClient(where);
    const s3: S3Client = s3Client(where);
    this.#droplets = new DropletCache({ dir: join(config.agentDir, 'droplets'), s3, places: config.dropletsFrom, urls: config.urls });
    this.#events = new EventPublisher({ sqs: this.#sqs, eventsQueueUrl: config.eventsQueueUrl, log: this.#log });
    this.#registrar = parts.registrar ?? NO_ROUTES;
    this.#deps = {
      config,
      warden: this.#warden,
      droplets: this.#droplets,
      events: this.#events,
      log: this.#log,
      registrar: this.#registrar,
      onState: (instance, state) => this.#onState(instance, state),
      beforeRunning: (instance) => this.#makeWay(instance),
      onFinished: (instance) => this.#onFinished(instance),
    };
    this.#poller = new StartQueuePoller({
      sqs: this.#sqs,
      queueUrl: config.startQueueUrl,
      capacity: this.capacity,
      log: this.#log,
      waitSeconds: config.tuning.pollWaitSeconds,
      handlers: { start: (r) => this.acceptStart(r), stop: (r) => this.acceptStop(r), reject: (r) => this.#rejectMalformed(r) },
    });
    this.capacity.onChange(() => this.#reportCapacity());
  }

  /** host:port of the HTTP API, once started (undefined when it is off). */
  get apiAddress(): string | undefined {
    return this.#api?.address;
  }

  async start(): Promise<void> {
    try {
      await this.#warden.call('Ping', {});
    } catch (err) {
      throw new WardenUnavailableError(`the agent needs wardend at ${this.config.wardenSocket} (DROPWARDEN_WARDEN_SOCKET): ${(err as Error).message}`);
    }
    try {
      // The API first: a port in use fails the start before anything is adopted.
      if (this.config.api) this.#api = await startApi(this, { ...this.config.api, log: this.#log });
      await this.#adopt();
      await this.#poller.start();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
    this.#reportCapacity();
    this.#reportTimer = setInterval(() => {
      this.#reportCapacity();
      this.#metrics.flush();
    }, this.config.tuning.reportIntervalMs);
    this.#reportTimer.unref();
    this.#log.info('Agent started', {
      api: this.apiAddress ?? 'off',
      advertise_host: this.config.advertiseHost,
      warden_socket: this.config.wardenSocket,
      memory_mb: this.config.memoryMb,
      disk_mb: this.config.diskMb,
      instances: this.capacity.free().instances,
    });
  }

  /** Stops polling and serving; the instances keep running in their containers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#reportTimer);
    await this.#poller.stop();
    await this.#api?.close();
    await Promise.all(this.#instances().map((i) => i.detach()));
    await this.#events.flush();
    this.#metrics.flush();
    await this.#reporter.close();
    this.#warden.close();
    this.#log.info('Agent stopped; its instances keep running for the next agent');
  }

  // ---- the API's view ----

  apps(): ApiApp[] {
    return [...this.#apps.values()];
  }

  app(appId: string): ApiApp | undefined {
    return this.#apps.get(appId);
  }

  // ---- requests ----

  /**
   * Instances 0..N-1 of the app run the request's droplet: indices already running (or
   * starting) it are left alone, others get a new instance (an old one of another droplet is
   * stopped once the new one runs), indices ≥ N stop. Resolves once every STARTING is sent.
   */
  acceptStart(req: StartRequest): Promise<void> | 'no-room' {
    const app = this.#apps.get(req.app_id);
    const live = (app?.instances ?? []).filter((i) => i.live);
    const indices: number[] = [];
    for (let index = 0; index < req.instances; index++) {
      if (!live.some((i) => i.index === index && i.request.droplet_uri === req.droplet_uri)) indices.push(index);
    }
    const each = { memoryMb: req.memory, diskMb: req.disk };
    if (indices.length > 0 && !this.capacity.couldEverFit(each, indices.length)) return this.#rejectStart(req, indices, each);
    if (indices.length > 0 && !this.capacity.fits(each, indices.length)) {
      this.#metrics.startWaiting();
      return 'no-room';
    }
    const entry = app ?? this.#newApp(req);
    Object.assign(entry, { name: req.name ?? req.app_id, droplet_uri: req.droplet_uri, memory: req.memory, disk: req.disk });
    // Instances of these indices that gave up are replaced, not kept beside the new ones.
    entry.instances = entry.instances.filter((i) => i.live || i.stopping || !indices.includes(i.index));
    const started = indices.map((index) => {
      const instance = new Instance(req, index, this.#deps);
      this.capacity.hold(instance.instanceId, each);
      entry.instances.push(instance);
      return instance;
    });
    if (started.length) this.#log.info('Starting instances', { app_id: req.app_id, indices, droplet_uri: req.droplet_uri });
    // Indices beyond the count go, running or given up.
    for (const extra of entry.instances.filter((i) => i.index >= req.instances && !i.stopping)) void extra.stop('scaled down');
    return Promise.all(started.map((i) => i.begin())).then(() => undefined);
  }

  /**
   * A start that even this host empty cannot hold: waiting would leave it on the queue unanswered
   * until the DLQ, so each index gets a CRASHED that says why (on the events queue and reply_to),
   * and the request is done. The hosts of a stack are one size (one launch template).
   */
  #rejectStart(req: StartRequest, indices: number[], each: { memoryMb: number; diskMb: number }): Promise<void> {
    const { total } = this.capacity;
    const reason =
      `cannot run here: ${indices.length} instance${indices.length === 1 ? '' : 's'} of ${each.memoryMb} MB memory and ${each.diskMb} MB disk ` +
      `need more than this host has in all (${total.memoryMb} MB memory, ${total.diskMb} MB disk); ask for less memory, disk or instances`;
    this.#log.warn('A start request can never fit on this host: reported CRASHED', { app_id: req.app_id, indices, reason });
    return Promise.all(indices.map((index) => new Instance(req, index, this.#deps).reject(reason))).then(() => undefined);
  }

  /** A malformed start request's answer on its reply_to (contracts/instances.ts REJECTED_INDEX). */
  #rejectMalformed(r: { replyTo: string; appId: string; error: string }): Promise<void> {
    return this.#events.reply(
      {
        app_id: r.appId,
        instance_id: '',
        index: REJECTED_INDEX,
        state: 'CRASHED',
        host: this.#deps.config.advertiseHost,
        port: null,
        url: null,
        reason: `${INVALID_START_REQUEST}: ${r.error}`,
        agent: this.#deps.config.agentId,
        timestamp: new Date().toISOString(),
      },
      r.replyTo,
    );
  }

  /** Stops the app's instances here (or the one named); undefined when none is here. */
  acceptStop(req: StopRequest): Promise<void> | undefined {
    const app = this.#apps.get(req.app_id);
    const targets = app?.instances.filter((i) => req.instance_id === undefined || i.instanceId === req.instance_id) ?? [];
    if (targets.length === 0) return undefined;
    this.#log.info('Stopping instances', { app_id: req.app_id, instance_ids: targets.map((i) => i.instanceId) });
    return Promise.all(targets.map((i) => i.stop('stopped'))).then(() => undefined);
  }

  // ---- adoption ----

  /** Containers wardend holds from an earlier agent become instances again; strays are destroyed. */
  async #adopt(): Promise<void> {
    const handles = await InstanceContainer.list(this.#warden);
    const found = await Promise.all(
      handles.map(async (handle) => {
        const container = new InstanceContainer(this.#warden, handle);
        try {
          return { container, ...(await container.probe()) };
        } catch (err) {
          this.#log.warn('Could not inspect a container to adopt it', { handle, error: (err as Error).message });
          return { container, props: undefined, state: undefined };
        }
      }),
    );
    const routed: RouteTarget[] = [];
    for (const { container, props, state } of found) {
      if (!props || !state) {
        // Made by an agent that stopped before the container was set up: nothing runs in it.
        this.#log.warn('Destroying a container with no instance properties', { handle: container.handle });
        await container.destroy().catch(() => undefined);
        continue;
      }
      const entry = this.#apps.get(props.app_id) ?? this.#newApp(props.request);
      const instance = new Instance(props.request, props.index, this.#deps, props);
      this.capacity.hold(instance.instanceId, { memoryMb: props.request.memory, diskMb: props.request.disk });
      entry.instances.push(instance);
      instance.adopt({ container, props, state });
      this.#log.info('Adopted an instance', { app_id: props.app_id, instance_id: props.instance_id, index: props.index, handle: container.handle, state: state.kind });
      if (state.kind === 'running' && props.host_port) {
        routed.push({ appId: props.app_id, instanceId: props.instance_id, index: props.index, host: this.config.advertiseHost, port: props.host_port });
      }
    }
    // What an earlier agent routed and is gone now leaves the routes; the rest stays routed
    // while the adopted instances are health-checked again (and registered once healthy).
    await this.#registrar.reconcile?.(routed);
  }

  // ---- bookkeeping ----

  #newApp(req: StartRequest): App {
    const app: App = { app_id: req.app_id, name: req.name ?? req.app_id, droplet_uri: req.droplet_uri, memory: req.memory, disk: req.disk, instances: [] };
    this.#apps.set(req.app_id, app);
    return app;
  }

  #instances(): Instance[] {
    return [...this.#apps.values()].flatMap((a) => a.instances);
  }

  /** The instances that a newly healthy one replaces leave the route before it reports RUNNING. */
  async #makeWay(instance: Instance): Promise<void> {
    const app = this.#apps.get(instance.appId);
    const older = (app?.instances ?? []).filter((o) => o !== instance && o.index === instance.index && o.live && o.acceptedAt < instance.acceptedAt);
    await Promise.all(older.map((o) => o.replace()));
  }

  #onState(instance: Instance, state: InstanceState): void {
    this.#metrics.instanceState(state.state);
    const app = this.#apps.get(instance.appId);
    if (state.state === 'RUNNING' && app) {
      // The newest instance of an index running: older ones there (another droplet, or a
      // duplicate found on adoption) are no longer wanted.
      for (const other of app.instances) {
        if (other !== instance && other.index === instance.index && other.live && other.acceptedAt < instance.acceptedAt) {
          void other.stop('replaced');
        }
      }
    }
    if (state.state === 'STOPPED' && app) {
      app.instances = app.instances.filter((i) => i !== instance);
      if (app.instances.length === 0) this.#apps.delete(app.app_id);
    }
  }

  #onFinished(instance: Instance): void {
    this.capacity.release(instance.instanceId);
    const inUse = this.#instances()
      .filter((i) => i.live)
      .map((i) => i.request.droplet_uri);
    this.#droplets.prune(inUse).catch((err: Error) => this.#log.warn('Could not prune the droplet cache', { error: err.message }));
  }

  #reportCapacity(): void {
    const free = this.capacity.free();
    this.#metrics.freeCapacity(free.memoryMb, free.diskMb);
    void this.#reporter.report(free);
  }
}
