/**
 * One instance's life: STARTING → RUNNING → CRASHED → (a fresh container after a backoff, up
 * to the restart limit) … → STOPPED. Each attempt is one container; an instance keeps its
 * instance_id across restarts, and `restarts` counts them.
 *
 * Stopping and detaching (agent shutdown) abort the life; a warden step already under way is
 * let finish (abandoning a create would leak its container), then stop destroys the container
 * and detach leaves it running for the next agent to adopt.
 */
import { randomBytes } from 'node:crypto';
import type { InstanceState, InstanceStateName, StartRequest } from '../../contracts/instances.ts';
import { WardenClientClosedError, WardenConnectionError, type WardenPool } from '../warden/client/index.ts';
import { raceAbort, sleep } from './abort.ts';
import type { AgentConfig } from './config.ts';
import { crashReason, DROPLET_DIR, InstanceContainer, type InstanceProperties, type JobExit, type ProbeState } from './container.ts';
import { DropletFetchError, type DropletCache } from './droplets.ts';
import type { EventPublisher } from './events.ts';
import { HealthCheckTimeoutError, waitHealthy } from './health-check.ts';
import type { AgentLogger } from './log.ts';
import { RouteRefusedError } from './routes/errors.ts';
import type { DeregisterOptions, RouteRegistrar, RouteTarget } from './routes/registrar.ts';
import { runEnvironment } from './run-environment.ts';

export interface InstanceDeps {
  config: AgentConfig;
  warden: WardenPool;
  droplets: DropletCache;
  events: EventPublisher;
  log: AgentLogger;
  /** The app's route (DESIGN §7): joined once healthy, left before a stop (drained) or on a crash (at once). */
  registrar: RouteRegistrar;
  /** Every state, as it is reported. */
  onState(instance: Instance, state: InstanceState): void;
  /**
   * The instance is healthy and in its route, about to report RUNNING: resolves once the older
   * instances it replaces are out of the route, so that whoever waits for RUNNING (push) finds
   * only the new code answering.
   */
  beforeRunning(instance: Instance): Promise<void>;
  /** The instance will make no further attempt (stopped or given up): its reservation can go. */
  onFinished(instance: Instance): void;
}

/** A container an agent found on wardend, with what it says about itself. */
export interface Adoption {
  container: InstanceContainer;
  props: InstanceProperties;
  state: ProbeState;
}

interface Crash {
  reason: string;
  /** Restarting will not help (the droplet does not exist). */
  permanent?: boolean;
}

/** Why an instance's life was cut short. */
class LifeAborted extends Error {
  override name = 'LifeAborted';
}

const newInstanceId = () => randomBytes(16).toString('hex');

export class Instance {
  readonly appId: string;
  readonly instanceId: string;
  readonly index: number;
  readonly request: StartRequest;
  /** When its request was accepted: of two instances for one index, the later one is wanted. */
  readonly acceptedAt: string;
  restarts = 0;
  latest: InstanceState;
  startedAt?: string;
  readonly #deps: InstanceDeps;
  readonly #abort = new AbortController();
  #mode: 'run' | 'stop' | 'detach' = 'run';
  #container?: InstanceContainer;
  #hostPort: number | null = null;
  #life: Promise<void> = Promise.resolve();
  #finished = false;
  #stopping?: Promise<void>;
  /** Resolved once a stop has taken the instance out of its route (or found it in none). */
  #leftRoute!: () => void;
  readonly #withdrawn = new Promise<void>((resolve) => {
    this.#leftRoute = resolve;
  });
  /** The address last put in the route, kept after a crash so that a stop still takes the instance out of it. */
  #routeTarget?: RouteTarget;

  constructor(request: StartRequest, index: number, deps: InstanceDeps, found?: InstanceProperties) {
    this.request = request;
    this.appId = request.app_id;
    this.index = index;
    this.#deps = deps;
    this.instanceId = found?.instance_id ?? newInstanceId();
    this.acceptedAt = found?.accepted_at ?? new Date().toISOString();
    if (found) {
      this.restarts = found.restarts;
      this.startedAt = found.started_at;
      this.#hostPort = found.host_port;
    }
    this.latest = this.#state('STARTING', {});
  }

  /** The container of the current attempt, while there is one. */
  get container(): InstanceContainer | undefined {
    return this.#container;
  }

  /** Wanted running: not stopping, not given up. */
  get live(): boolean {
    return this.#mode === 'run' && !this.#finished;
  }

  /** Being stopped (by a request, a replacement or a scale-down). */
  get stopping(): boolean {
    return this.#mode === 'stop';
  }

  /** Accepted: reports STARTING and begins its life. Resolves once STARTING is on the events queue. */
  begin(): Promise<void> {
    const sent = this.#report('STARTING');
    this.#life = this.#run();
    return sent;
  }

  /** Never to be started (no host of this size can hold it): reports CRASHED with the reason, and is done. */
  reject(reason: string): Promise<void> {
    this.#finished = true;
    return this.#report('CRASHED', { reason });
  }

  /** Found after an agent restart: watched again, health-checked, RUNNING again. */
  adopt(found: Adoption): void {
    this.#container = found.container;
    this.#life = this.#run(found);
  }

  /** The droplet's ./stop, destroy, STOPPED with `reason`. Idempotent. */
  stop(reason = 'stopped'): Promise<void> {
    this.#stopping ??= (async () => {
      this.#mode = 'stop';
      this.#abort.abort(new LifeAborted('stopped'));
      await this.#life;
      // Out of the route first; requests under way finish (or the drain times out) before ./stop.
      if (this.#routeTarget) await this.#leaveRoute({ drain: true, onWithdrawn: () => this.#leftRoute() });
      this.#leftRoute();
      const container = this.#container;
      this.#container = undefined;
      if (container) {
        await container.stopApp();
        await container
          .destroy()
          .catch((err: Error) =>
            this.#deps.log.warn("Could not destroy a stopped instance's container", { ...this.#ids(), handle: container.handle, error: err.message }),
          );
      }
      await this.#report('STOPPED', { reason });
      this.#finish();
    })();
    return this.#stopping;
  }

  /**
   * Stopped for a newer instance of its index: resolves once it is out of its route, while its
   * drain, ./stop and destroy go on.
   */
  replace(): Promise<void> {
    void this.stop('replaced');
    return this.#withdrawn;
  }

  /** Agent shutdown: stop watching; the container and its app keep running. */
  async detach(): Promise<void> {
    if (this.#mode !== 'run') return;
    this.#mode = 'detach';
    this.#abort.abort(new LifeAborted('detached'));
    this.#container?.unwatch();
    await this.#life;
  }

  async #run(adopted?: Adoption): Promise<void> {
    let next = adopted;
    while (this.#mode === 'run') {
      const crash = await this.#attempt(next);
      next = undefined;
      if (!crash) return;
      await this.#crashed(crash);
      if (crash.permanent || this.restarts >= this.#deps.config.maxRestarts) {
        this.#deps.log.warn('Instance crashed and will not be restarted', { ...this.#ids(), reason: crash.reason, restarts: this.restarts });
        this.#finish();
        return;
      }
      const { restartBackoffFirstMs: first, restartBackoffMaxMs: max } = this.#deps.config.tuning;
      try {
        await sleep(Math.min(first * 2 ** this.restarts, max), this.#abort.signal);
      } catch {
        return;
      }
      this.restarts++;
      void this.#report('STARTING');
    }
  }

  /** One container's life; resolves with why it ended, or undefined when stopped or detached. */
  async #attempt(adopted?: Adoption): Promise<Crash | undefined> {
    const signal = this.#abort.signal;
    try {
      let exit: Promise<JobExit>;
      if (adopted?.state.kind === 'not-started') {
        // An earlier agent stopped before it spawned the app: start over in a fresh container.
        this.#deps.log.info('Launching again an instance whose start an earlier agent did not finish', this.#ids());
        this.#container = undefined;
        await adopted.container.destroy();
        adopted = undefined;
      }
      if (adopted) {
        if (adopted.state.kind === 'stopped') return { reason: adopted.state.reason };
        if (adopted.state.kind === 'exited') return { reason: `exited with status ${adopted.state.status}` };
        exit = this.#watch(adopted.container, adopted.container.watchAdopted());
      } else {
        ({ exit } = await this.#launch(signal));
      }
      const timeoutS = this.request.health_check_timeout ?? this.#deps.config.healthCheckTimeoutS;
      const healthCheck = new AbortController();
      const healthy = waitHealthy(
        this.request.health_check,
        { host: this.#deps.config.advertiseHost, port: this.#hostPort! },
        {
          timeoutS,
          signal: AbortSignal.any([signal, healthCheck.signal]),
        },
      );
      healthy.catch(() => undefined);
      const first = await raceAbort(Promise.race([exit.then((e) => ({ exit: e })), healthy.then(() => undefined)]), signal).finally(() => healthCheck.abort());
      if (first) return { reason: crashReason(first.exit) };
      // In the route before RUNNING is reported: whoever waits for RUNNING (push) finds the route answering.
      await this.#joinRoute();
      await this.#deps.beforeRunning(this);
      void this.#report('RUNNING');
      return { reason: crashReason(await raceAbort(exit, signal)) };
    } catch (err) {
      if (signal.aborted) return undefined;
      if (err instanceof HealthCheckTimeoutError) return { reason: err.message };
      if (err instanceof DropletFetchError) return { reason: err.message, permanent: err.permanent };
      if (err instanceof RouteRefusedError) return { reason: `no route: ${err.message}`, permanent: true };
      return { reason: `failed to start: ${(err as Error).message}` };
    }
  }

  /**
   * Droplet, container, port, properties, limits, droplet unpacked, startup spawned; resolves
   * with the job's exit. The properties come right after create, so that an agent stopped
   * half-way leaves a container the next one knows to launch again.
   */
  async #launch(signal: AbortSignal): Promise<{ exit: Promise<JobExit> }> {
    const { config, warden, droplets } = this.#deps;
    const tgz = await droplets.fetch(this.request.droplet_uri, signal);
    const container = await InstanceContainer.create(warden, {
      handle: InstanceContainer.handleFor(this.instanceId, this.restarts),
      graceTimeS: config.tuning.graceTimeS,
    });
    this.#container = container;
    const { hostPort, containerPort } = await container.netIn();
    this.#hostPort = hostPort;
    const startedAt = new Date();
    this.startedAt = startedAt.toISOString();
    await container.writeProperties({
      app_id: this.appId,
      instance_id: this.instanceId,
      index: this.index,
      request: this.request,
      restarts: this.restarts,
      host_port: hostPort,
      container_port: containerPort,
      started_at: this.startedAt,
      accepted_at: this.acceptedAt,
    });
    signal.throwIfAborted();
    const { disk } = await container.limit(this.request.memory, this.request.disk);
    if (!disk) this.#deps.log.debug("wardend has no disk limits: the instance's disk is not limited", this.#ids());
    await container.installDroplet(tgz);
    signal.throwIfAborted();
    const env = runEnvironment(this.request, {
      instanceId: this.instanceId,
      index: this.index,
      home: DROPLET_DIR,
      port: containerPort,
      uri: `${config.advertiseHost}:${hostPort}`,
      startedAt,
    });
    const jobId = await container.spawnStartup(env, containerPort);
    return { exit: this.#watch(container, container.watch(jobId)) };
  }

  /**
   * The job's exit. A connection to wardend that breaks (wardend restarting) is no exit: the
   * container lives on, so it is watched again the way an adopting agent would.
   */
  async #watch(container: InstanceContainer, first: Promise<JobExit>): Promise<JobExit> {
    let watching = first;
    for (;;) {
      try {
        return await watching;
      } catch (err) {
        // A watcher closed on purpose (the container recycled, destroyed or detached) lost nothing.
        if (this.#mode !== 'run' || !(err instanceof WardenConnectionError) || err instanceof WardenClientClosedError) throw err;
        this.#deps.log.warn('Lost wardend while watching an instance; watching it again', { ...this.#ids(), error: err.message });
        await sleep(1000, this.#abort.signal);
        watching = container.watchAdopted();
      }
    }
  }

  async #crashed(crash: Crash): Promise<void> {
    // Out of the route at once, without a drain: nothing is listening any more.
    if (this.#routeTarget) await this.#leaveRoute({ drain: false });
    const container = this.#container;
    this.#container = undefined;
    let logsTail: string | undefined;
    if (container) {
      logsTail = await container.logsTail(this.#deps.config.tuning.logsTailLines).catch(() => undefined);
      await container
        .destroy()
        .catch((err: Error) => this.#deps.log.warn("Could not destroy a crashed instance's container", { ...this.#ids(), handle: container.handle, error: err.message }));
    }
    await this.#report('CRASHED', { reason: crash.reason, logs_tail: logsTail });
    this.#hostPort = null;
  }

  async #joinRoute(): Promise<void> {
    const target: RouteTarget = { appId: this.appId, instanceId: this.instanceId, index: this.index, host: this.#deps.config.advertiseHost, port: this.#hostPort! };
    this.#routeTarget = target;
    try {
      await this.#deps.registrar.register(target);
    } catch (err) {
      // No route can be made for this app (a load balancer limit, a conflicting rule): a crash
      // whose reason says so, not an instance that runs unreachable.
      if (err instanceof RouteRefusedError) throw err;
      this.#deps.log.warn('Could not put the instance in its route', { ...this.#ids(), error: (err as Error).message });
    }
  }

  async #leaveRoute(options: DeregisterOptions): Promise<void> {
    const target = this.#routeTarget!;
    if (options.drain) this.#routeTarget = undefined;
    try {
      await this.#deps.registrar.deregister(target, options);
    } catch (err) {
      this.#deps.log.warn('Could not take the instance out of its route', { ...this.#ids(), drain: options.drain, error: (err as Error).message });
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#deps.onFinished(this);
  }

  #ids() {
    return { app_id: this.appId, instance_id: this.instanceId, index: this.index };
  }

  #state(state: InstanceStateName, extra: { reason?: string; logs_tail?: string }): InstanceState {
    const { advertiseHost, agentId } = this.#deps.config;
    const port = this.#hostPort;
    return {
      app_id: this.appId,
      instance_id: this.instanceId,
      index: this.index,
      state,
      host: advertiseHost,
      port,
      url: state === 'RUNNING' && port !== null ? `http://${advertiseHost}:${port}` : null,
      reason: extra.reason ?? null,
      droplet_uri: this.request.droplet_uri,
      restarts: this.restarts,
      ...(extra.logs_tail !== undefined && { logs_tail: extra.logs_tail }),
      agent: agentId,
      timestamp: new Date().toISOString(),
    };
  }

  #report(state: InstanceStateName, extra: { reason?: string; logs_tail?: string } = {}): Promise<void> {
    this.latest = this.#state(state, extra);
    const { reason, port, restarts } = this.latest;
    this.#deps.log.info(`Instance ${state}`, { ...this.#ids(), reason, port, restarts });
    this.#deps.onState(this, this.latest);
    return this.#deps.events.publish(this.latest, this.request.reply_to);
  }
}
