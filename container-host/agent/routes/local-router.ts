/**
 * The local stack's registrar (DESIGN §7): the agent's instances in the router of `dropwarden
 * up`, through its admin API on loopback (contracts/routes.ts). Each call goes at once; besides,
 * the whole state is re-sent every few seconds, so a router that restarted (or missed a call)
 * learns it again, and calls that failed are made good.
 */
import { ROUTER_ADMIN, type RouteSync, type RouteTargetBody } from '../../../contracts/routes.ts';
import { SETTING } from '../../../contracts/settings.ts';
import type { AgentLogger } from '../log.ts';
import { type DeregisterOptions, NO_ROUTES, type RouteRegistrar, type RouteTarget, withdrawnOnce } from './registrar.ts';

export const RESYNC_MS = 2000;
const CALL_TIMEOUT_MS = 5000;
/** A drain waits for the router, which gives up on it after its drain timeout (at most 60 s). */
const DRAIN_CALL_TIMEOUT_MS = 65_000;

export interface LocalRouterOptions {
  /** host:port of the router's admin API. */
  admin: string;
  /** Names this agent to the router (several agents share one router). */
  source: string;
  log: AgentLogger;
  resyncMs?: number;
}

const body = (t: RouteTarget): RouteTargetBody => ({ app_id: t.appId, instance_id: t.instanceId, index: t.index, host: t.host, port: t.port });
const keyOf = (t: { appId: string; instanceId: string }) => `${t.appId}/${t.instanceId}`;

export class LocalRouterRegistrar implements RouteRegistrar {
  readonly #base: string;
  readonly #source: string;
  readonly #log: AgentLogger;
  readonly #targets = new Map<string, RouteTarget>();
  /** Per app: instances that crashed out of the route and have not come back (the app is down, not gone). */
  readonly #crashed = new Map<string, Set<string>>();
  #complete = false;
  #timer?: NodeJS.Timeout;
  #unreachable = false;
  #closed = false;
  /** A whole-state sync under way: a call waits for it, so that a sync sent before a deregister cannot land after it and put the target back. */
  #syncing?: Promise<void>;

  constructor(opts: LocalRouterOptions) {
    this.#base = `http://${opts.admin}`;
    this.#source = opts.source;
    this.#log = opts.log;
    this.#timer = setInterval(() => void this.#sync(), opts.resyncMs ?? RESYNC_MS);
    this.#timer.unref();
  }

  async register(target: RouteTarget): Promise<void> {
    this.#targets.set(keyOf(target), target);
    this.#crashed.get(target.appId)?.delete(target.instanceId);
    await this.#syncing;
    await this.#call('PUT', ROUTER_ADMIN.target(this.#source, target.appId, target.instanceId), body(target), CALL_TIMEOUT_MS);
  }

  async deregister(target: RouteTarget, options: DeregisterOptions): Promise<void> {
    this.#targets.delete(keyOf(target));
    const crashed = this.#crashed.get(target.appId) ?? new Set<string>();
    if (options.drain) crashed.delete(target.instanceId);
    else crashed.add(target.instanceId);
    if (crashed.size) this.#crashed.set(target.appId, crashed);
    else this.#crashed.delete(target.appId);
    const path = `${ROUTER_ADMIN.target(this.#source, target.appId, target.instanceId)}?drain=${options.drain ? 1 : 0}`;
    await this.#syncing;
    // The router answers a drain's headers once the target is out of its rotation, and its body once drained.
    const onWithdrawn = withdrawnOnce(options);
    try {
      await this.#call('DELETE', path, undefined, options.drain ? DRAIN_CALL_TIMEOUT_MS : CALL_TIMEOUT_MS, onWithdrawn);
    } finally {
      onWithdrawn();
    }
  }

  /** Everything this agent routes after adopting: from now on the router drops what is not in it. */
  async reconcile(targets: RouteTarget[]): Promise<void> {
    for (const t of targets) this.#targets.set(keyOf(t), t);
    this.#complete = true;
    await this.#sync();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  #state(): RouteSync {
    const routed = new Set([...this.#targets.values()].map((t) => t.appId));
    return {
      targets: [...this.#targets.values()].map(body),
      down: [...this.#crashed.keys()].filter((a) => !routed.has(a)),
      complete: this.#complete,
    };
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    await this.#syncing;
    const sending = this.#call('PUT', ROUTER_ADMIN.source(this.#source), this.#state(), CALL_TIMEOUT_MS);
    this.#syncing = sending;
    await sending;
    if (this.#syncing === sending) this.#syncing = undefined;
  }

  /** Never throws: the router may be restarting; the next sync makes the call good. */
  async #call(method: string, path: string, json: unknown, timeoutMs: number, onHeaders?: () => void): Promise<void> {
    try {
      const res = await fetch(`${this.#base}${path}`, {
        method,
        headers: json === undefined ? {} : { 'content-type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.ok) onHeaders?.();
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${text}`);
      if (this.#unreachable) this.#log.info('The router answers again', { router: this.#base });
      this.#unreachable = false;
    } catch (err) {
      if (!this.#unreachable) {
        this.#log.warn('Could not reach the router; its routes are re-sent every few seconds', {
          router: this.#base,
          call: `${method} ${path}`,
          error: (err as Error).message,
        });
      }
      this.#unreachable = true;
    }
  }
}

/**
 * The registrar a host's settings ask for: the local router when DROPWARDEN_ROUTER_ADMIN names
 * one, else none (the ALB registrar on AWS comes from its own settings).
 */
export function localRegistrarFromEnv(env: NodeJS.ProcessEnv, opts: { source: string; log: AgentLogger }): RouteRegistrar & { close?: () => void } {
  const admin = env[SETTING.routerAdmin];
  if (!admin) return NO_ROUTES;
  return new LocalRouterRegistrar({ admin, ...opts });
}
