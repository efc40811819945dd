/**
 * Where the agent puts its instances so that their app's route reaches them (DESIGN §7): the
 * router of the local stack, or an Application Load Balancer's target group on AWS. The agent
 * registers an instance once it is healthy (RUNNING) and deregisters it before it stops it;
 * a crashed instance is deregistered at once, without a drain.
 */

/** One instance as its app's route sees it. */
export interface RouteTarget {
  appId: string;
  instanceId: string;
  index: number;
  /** The address the route sends requests to: the host's advertise address and the instance's net_in port. */
  host: string;
  port: number;
}

export interface DeregisterOptions {
  drain: boolean;
  /**
   * Called once no new request can reach the instance, before its drain: a replacement reports
   * RUNNING only after the instance it replaces is out of the route. Called at most once, and
   * also when the call failed (the route cannot be reached to send the instance anything).
   */
  onWithdrawn?: () => void;
}

export interface RouteRegistrar {
  /** The instance is healthy: its route may send it requests. Registering a target twice is harmless. */
  register(target: RouteTarget): Promise<void>;
  /**
   * Takes the instance out of its route. Resolves once no new request can reach it and, with
   * `drain`, once its in-flight requests have finished or the drain timeout has passed.
   * An unknown target resolves at once.
   */
  deregister(target: RouteTarget, options: DeregisterOptions): Promise<void>;
  /**
   * Optional. Called once after the agent adopted what an earlier agent left (DESIGN §11) with
   * every target of this host that may still be routed: a target this host registered before
   * and not among them is gone (its container went while no agent ran) and may be dropped.
   * Those among them are registered again once healthy.
   */
  reconcile?(targets: RouteTarget[]): Promise<void>;
}

/** `options.onWithdrawn` as a function that calls it the first time only. */
export function withdrawnOnce(options: DeregisterOptions): () => void {
  let called = false;
  return () => {
    if (!called) options.onWithdrawn?.();
    called = true;
  };
}

/** For an agent whose instances have no routes (tests, a host outside any fleet). */
export const NO_ROUTES: RouteRegistrar = {
  register: async () => {},
  deregister: async (_target, options) => options.onWithdrawn?.(),
};
