/**
 * The settings of the ELB registrar (DESIGN §7, §13): which listener of the stack's Application
 * Load Balancer carries the routes, the VPC the target groups live in, the route domain and the
 * drain. The CDK task definition sets them; the composition root (`dropwarden agent`) parses
 * them once with `elbRoutesConfigFromEnv` and passes the result to `createElbRegistrar`.
 */
import { SETTING } from '../../../contracts/settings.ts';

export interface ElbRoutesConfig {
  /** The listener's ARN: `arn:<partition>:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>`. */
  listenerArn: string;
  /** Taken from the listener ARN, so the client always talks to the listener's own region. */
  region: string;
  vpcId: string;
  /** Routes are `<app_id>.<domain>`. */
  domain: string;
  /**
   * Each target group's `deregistration_delay.timeout_seconds`: how long the load balancer lets
   * a deregistered target finish its in-flight requests, and so how long a drain may take.
   */
  drainSeconds: number;
  /**
   * How often a drain polls the target's state (seconds; the SDK waiter's delays), and how long
   * past `drainSeconds` it keeps polling before the instance is stopped anyway.
   */
  drainPoll: { minDelaySeconds: number; maxDelaySeconds: number; slackSeconds: number };
}

export const DEFAULT_DRAIN_SECONDS = 30;
/** The longest deregistration delay ELB accepts. */
export const MAX_DRAIN_SECONDS = 3600;
/**
 * A host-header condition value is at most 128 characters and an app id at most 63, so the
 * domain gets the rest: 128 − 63 − 1 (the dot).
 */
export const MAX_DOMAIN_LENGTH = 64;

/** A routes setting that cannot be used; the message names the variable and what it expects. */
export class RoutesConfigError extends Error {
  override name = 'RoutesConfigError';
}

const LISTENER_ARN = /^arn:(aws[a-z-]*):elasticloadbalancing:([a-z0-9-]+):(\d{12}):listener\/app\/[A-Za-z0-9-]{1,32}\/[0-9a-f]+\/[0-9a-f]+$/;
const VPC_ID = /^vpc-[0-9a-f]{8,17}$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Checks a route domain; returns a reason when it is unusable, else null. Shared with the CDK config. */
export function domainProblem(domain: string): string | null {
  if (domain.length > MAX_DOMAIN_LENGTH)
    return `is ${domain.length} characters; at most ${MAX_DOMAIN_LENGTH} fit beside a 63-character app id in a load balancer host condition (128)`;
  const labels = domain.split('.');
  if (labels.some((l) => !LABEL.test(l))) return 'is not a lowercase DNS name (labels of a-z, 0-9 and "-", separated by dots)';
  if (!/^[a-z]+$/.test(labels.at(-1)!)) return 'must end in an alphabetic label (a top-level domain such as "com"), as load balancer host conditions require';
  return null;
}

/**
 * The registrar's settings, or null when the environment names no listener (a host without a
 * load balancer: the agent then uses another registrar, or none). Names only some of them:
 * an error saying which is missing.
 */
export function elbRoutesConfigFromEnv(env: NodeJS.ProcessEnv): ElbRoutesConfig | null {
  const listenerArn = env[SETTING.routesListenerArn]?.trim() || undefined;
  const vpcId = env[SETTING.routesVpcId]?.trim() || undefined;
  const domain = env[SETTING.routesDomain]?.trim().toLowerCase() || undefined;
  if (!listenerArn && !vpcId && !domain) return null;
  const missing = [
    [SETTING.routesListenerArn, listenerArn],
    [SETTING.routesVpcId, vpcId],
    [SETTING.routesDomain, domain],
  ]
    .filter(([, v]) => !v)
    .map(([name]) => name);
  if (missing.length) {
    throw new RoutesConfigError(
      `${missing.join(' and ')} not set: load balancer routes need the listener ARN, the VPC id and the route domain together (the stack's task definition sets all three)`,
    );
  }
  const arn = LISTENER_ARN.exec(listenerArn!);
  if (!arn) {
    throw new RoutesConfigError(
      `${SETTING.routesListenerArn}=${JSON.stringify(listenerArn)} is not an Application Load Balancer listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)`,
    );
  }
  if (!VPC_ID.test(vpcId!)) throw new RoutesConfigError(`${SETTING.routesVpcId}=${JSON.stringify(vpcId)} is not a VPC id (vpc-0123abcd…)`);
  const problem = domainProblem(domain!);
  if (problem) throw new RoutesConfigError(`${SETTING.routesDomain}=${JSON.stringify(domain)} ${problem}`);
  const rawDrain = env[SETTING.routesDrainSeconds]?.trim();
  let drainSeconds = DEFAULT_DRAIN_SECONDS;
  if (rawDrain) {
    drainSeconds = Number(rawDrain);
    if (!/^\d+$/.test(rawDrain) || drainSeconds > MAX_DRAIN_SECONDS) {
      throw new RoutesConfigError(
        `${SETTING.routesDrainSeconds}=${JSON.stringify(rawDrain)} is not a whole number of seconds from 0 to ${MAX_DRAIN_SECONDS} (the load balancer's deregistration delay)`,
      );
    }
  }
  return {
    listenerArn: listenerArn!,
    region: arn[2],
    vpcId: vpcId!,
    domain: domain!,
    drainSeconds,
    drainPoll: { minDelaySeconds: 2, maxDelaySeconds: 5, slackSeconds: 15 },
  };
}
