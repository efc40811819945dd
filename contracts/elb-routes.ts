/**
 * What the stack's IAM policy (cdk/lib/routes.ts) and the agent's ELB registrar
 * (container-host/agent/routes/elb-registrar.ts) agree on about the target groups and listener
 * rules the agents create (DESIGN §7): the tags that mark them as one stack's, and the name
 * prefix of the target groups. Add names, never rename: deployed policies match on them.
 */
export const ROUTE_TAG = {
  /** The listener whose routes the resource belongs to (its ARN): the IAM policy's scope. */
  listener: 'dropwarden:listener',
  /** The app id the target group or rule routes to. */
  app: 'dropwarden:app',
} as const;

/** Every target group the agents create is named `dw-…` (at most 32 characters in all). */
export const TARGET_GROUP_NAME_PREFIX = 'dw-';
