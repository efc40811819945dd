/**
 * Why an instance could not join its route (DESIGN §7.1). The messages are written for the
 * person who pushed the app: one line each, fit for the CRASHED reason `push` shows.
 */

/**
 * The route cannot be made as things stand, and trying again will not change that: the
 * instance should be reported CRASHED with this message rather than retried. Every other error
 * a registrar throws (a throttled or unreachable control plane) is worth another try.
 */
export class RouteRefusedError extends Error {
  override name = 'RouteRefusedError';
}

/** The load balancer has no room for this app's route (rules, target groups or targets). */
export class RouteLimitError extends RouteRefusedError {
  override name = 'RouteLimitError';
  /** Which ELB quota, e.g. `rules-per-application-load-balancer`. */
  readonly quota: string;
  constructor(quota: string, message: string) {
    super(message);
    this.quota = quota;
  }
}

/**
 * Something on the listener that dropwarden did not make claims the app's name: a rule for its
 * host, or a target group with its name. The registrar leaves it alone.
 */
export class RouteConflictError extends RouteRefusedError {
  override name = 'RouteConflictError';
}

/** The instance's address cannot be a load balancer target. */
export class RouteTargetError extends RouteRefusedError {
  override name = 'RouteTargetError';
}
