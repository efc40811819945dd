/**
 * Why an instance could not join its route (DESIGN §7). The messages are written for the person
 * who pushed the app: the agent reports them as the CRASHED reason `push` shows.
 */

/** The load balancer has no room for this app's route (rules, target groups or targets). */
export class RouteLimitError extends Error {
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
export class RouteConflictError extends Error {
  override name = 'RouteConflictError';
}

/** The instance's address cannot be a load balancer target. */
export class RouteTargetError extends Error {
  override name = 'RouteTargetError';
}
