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

export interface RouteRegistrar {
  /** The instance is healthy: its route may send it requests. Registering a target twice is harmless. */
  register(target: RouteTarget): Promise<void>;
  /**
   * Takes the instance out of its route. Resolves once no new request can reach it and, with
   * `drain`, once its in-flight requests have finished or the drain timeout has passed.
   * An unknown target resolves at once.
   */
  deregister(target: RouteTarget, options: { drain: boolean }): Promise<void>;
  /**
   * Optional. Called once after the agent adopted what an earlier agent left (DESIGN §11) with
   * every target of this host that may still be routed: a target this host registered before
   * and not among them is gone (its container went while no agent ran) and may be dropped.
   * Those among them are registered again once healthy.
   */
  reconcile?(targets: RouteTarget[]): Promise<void>;
}

/** For an agent whose instances have no routes (tests, a host outside any fleet). */
export const NO_ROUTES: RouteRegistrar = {
  register: async () => {},
  deregister: async () => {},
};
