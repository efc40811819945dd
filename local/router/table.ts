/**
 * The local router's routes (DESIGN §7): per source (one agent), the instances it registered and
 * the apps it runs with none in their route; per app, the instances a request may go to, taken
 * in turn (round robin). A deregistered instance leaves the rotation at once; a drain waits for
 * its in-flight requests, up to a timeout.
 */
import type { RouteSync, RouteTargetBody } from '../../contracts/routes.ts';

export interface Backend {
  readonly source: string;
  readonly appId: string;
  readonly instanceId: string;
  readonly index: number;
  readonly host: string;
  readonly port: number;
  /** Requests (and WebSockets) under way to it. */
  inflight: number;
  /** Refused a connection lately: skipped until then, unless it is all there is. */
  suspectUntil: number;
  /** Out of the rotation, waiting for its in-flight requests. */
  draining: boolean;
  /** Resolved when inflight reaches 0 while draining. */
  idle?: () => void;
}

export type Pick = { kind: 'unknown' } | { kind: 'down' } | { kind: 'ok'; backend: Backend };

interface Source {
  targets: Map<string, Backend>;
  down: Set<string>;
}

export interface DrainOutcome {
  /** false: it was not registered (already gone). */
  found: boolean;
  /** Requests still under way when the drain gave up (0 when they all finished). */
  left: number;
  waitedMs: number;
}

const keyOf = (appId: string, instanceId: string) => `${appId}/${instanceId}`;
/** How long a backend that refused a connection is passed over. */
export const SUSPECT_MS = 1000;

/** Adds the target, or replaces it where its address or index changed (its in-flight count kept). */
function putTarget(targets: Map<string, Backend>, source: string, t: RouteTargetBody): void {
  const key = keyOf(t.app_id, t.instance_id);
  const had = targets.get(key);
  if (had && had.host === t.host && had.port === t.port && had.index === t.index) return;
  targets.set(key, {
    source,
    appId: t.app_id,
    instanceId: t.instance_id,
    index: t.index,
    host: t.host,
    port: t.port,
    inflight: had?.inflight ?? 0,
    suspectUntil: 0,
    draining: false,
  });
}

export class RouteTable {
  readonly #sources = new Map<string, Source>();
  /** Per app: the backends in its rotation (registered, not draining), rebuilt on every change. */
  readonly #rotation = new Map<string, Backend[]>();
  readonly #next = new Map<string, number>();
  /** Per app: how many sources name it (targets or down). */
  #known = new Set<string>();

  #source(name: string): Source {
    let s = this.#sources.get(name);
    if (!s) {
      s = { targets: new Map(), down: new Set() };
      this.#sources.set(name, s);
    }
    return s;
  }

  #rebuild(appIds: Iterable<string>): void {
    for (const appId of new Set(appIds)) {
      const list: Backend[] = [];
      for (const s of this.#sources.values()) for (const b of s.targets.values()) if (b.appId === appId) list.push(b);
      if (list.length) this.#rotation.set(appId, list);
      else this.#rotation.delete(appId);
    }
    const known = new Set<string>(this.#rotation.keys());
    for (const s of this.#sources.values()) for (const a of s.down) known.add(a);
    this.#known = known;
  }

  /** Puts the instance in its app's rotation (again); a changed address replaces the old one. */
  register(source: string, t: RouteTargetBody): void {
    const s = this.#source(source);
    putTarget(s.targets, source, t);
    s.down.delete(t.app_id);
    this.#rebuild([t.app_id]);
  }

  /**
   * Takes the instance out of its rotation at once. Without `drain` (a crash) its app counts
   * as down for this source if nothing else of it is left here; with it, resolves once its
   * in-flight requests are done or `timeoutMs` passed.
   */
  async deregister(source: string, appId: string, instanceId: string, opts: { drain: boolean; timeoutMs: number }): Promise<DrainOutcome> {
    const s = this.#source(source);
    const key = keyOf(appId, instanceId);
    const backend = s.targets.get(key);
    if (!backend) return { found: false, left: 0, waitedMs: 0 };
    s.targets.delete(key);
    if (!opts.drain && ![...s.targets.values()].some((b) => b.appId === appId)) s.down.add(appId);
    this.#rebuild([appId]);
    if (!opts.drain) return { found: true, left: backend.inflight, waitedMs: 0 };
    return this.#drain(backend, opts.timeoutMs);
  }

  async #drain(backend: Backend, timeoutMs: number): Promise<DrainOutcome> {
    const started = Date.now();
    backend.draining = true;
    if (backend.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        backend.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      backend.idle = undefined;
    }
    return { found: true, left: backend.inflight, waitedMs: Date.now() - started };
  }

  /**
   * A source's whole state. Complete: what it no longer names leaves at once (no drain: the
   * source does not run it any more). Partial: only adds.
   */
  sync(source: string, body: RouteSync): void {
    const s = this.#source(source);
    const touched = new Set<string>([...s.down, ...body.down, ...body.targets.map((t) => t.app_id)]);
    if (body.complete) {
      const wanted = new Set(body.targets.map((t) => keyOf(t.app_id, t.instance_id)));
      for (const [key, b] of s.targets) {
        if (!wanted.has(key)) {
          s.targets.delete(key);
          touched.add(b.appId);
        }
      }
      s.down = new Set(body.down);
    } else {
      for (const a of body.down) s.down.add(a);
    }
    for (const t of body.targets) {
      putTarget(s.targets, source, t);
    }
    // An app with an instance in its route is not down, whatever a stale list says.
    for (const t of body.targets) s.down.delete(t.app_id);
    this.#rebuild(touched);
  }

  /** The next backend of the app in turn, skipping `exclude` and suspects (unless only they are left). */
  pick(appId: string, exclude?: ReadonlySet<Backend>): Pick {
    const list = this.#rotation.get(appId);
    if (!list) return { kind: this.#known.has(appId) ? 'down' : 'unknown' };
    const now = Date.now();
    const start = this.#next.get(appId) ?? 0;
    let fallback: Backend | undefined;
    for (let i = 0; i < list.length; i++) {
      const b = list[(start + i) % list.length];
      if (exclude?.has(b)) continue;
      if (b.suspectUntil > now) {
        fallback ??= b;
        continue;
      }
      this.#next.set(appId, (start + i + 1) % list.length);
      return { kind: 'ok', backend: b };
    }
    return fallback ? { kind: 'ok', backend: fallback } : { kind: 'down' };
  }

  acquire(b: Backend): void {
    b.inflight++;
  }

  release(b: Backend): void {
    b.inflight--;
    if (b.inflight <= 0 && b.idle) b.idle();
  }

  /** Refused or reset before answering: passed over for a while. */
  suspect(b: Backend): void {
    b.suspectUntil = Date.now() + SUSPECT_MS;
  }

  /** What `GET /v1/routes` shows. */
  snapshot(): Record<string, { targets: Array<{ instance_id: string; index: number; host: string; port: number; inflight: number; source: string }>; down: boolean }> {
    const out: ReturnType<RouteTable['snapshot']> = {};
    for (const appId of [...this.#known].sort()) {
      const targets = (this.#rotation.get(appId) ?? []).map((b) => ({
        instance_id: b.instanceId,
        index: b.index,
        host: b.host,
        port: b.port,
        inflight: b.inflight,
        source: b.source,
      }));
      out[appId] = { targets, down: targets.length === 0 };
    }
    return out;
  }
}
