/**
 * Routes on AWS (DESIGN §7): each app gets a target group of `ip` targets (host private IP and
 * net_in port) and a rule on the stack's listener matching `Host: <app_id>.<domain>`. Whichever
 * host's agent registers the app's first instance creates both; every other agent (and the same
 * one after a restart) finds them again by name and tag. Registering is RegisterTargets,
 * deregistering DeregisterTargets, and a drain waits until the load balancer reports the target
 * `unused`, which it does once in-flight requests end or the deregistration delay has passed.
 */
import {
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DeleteRuleCommand,
  DeleteTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeAccountLimitsCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyRuleCommand,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
  waitUntilTargetDeregistered,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Rule, Tag, TargetGroup } from '@aws-sdk/client-elastic-load-balancing-v2';
import { isIPv4 } from 'node:net';
import { ROUTE_TAG } from '../../../contracts/elb-routes.ts';
import type { AgentLogger } from '../log.ts';
import type { ElbRoutesConfig } from './elb-config.ts';
import { routeHost, targetGroupName } from './elb-names.ts';
import { RouteConflictError, RouteLimitError, RouteTargetError } from './errors.ts';
import { type DeregisterOptions, type RouteRegistrar, type RouteTarget, withdrawnOnce } from './registrar.ts';

/** ELB's default quotas, used when DescribeAccountLimits cannot be read. */
export const DEFAULT_LIMITS = { rules: 100, targetGroups: 100 };
const RULES_QUOTA = 'rules-per-application-load-balancer';
const TARGET_GROUPS_QUOTA = 'target-groups-per-application-load-balancer';
/** Priorities ELB accepts for listener rules. */
const MAX_PRIORITY = 50_000;
/** CreateRule attempts when other hosts take the chosen priority first. */
const CREATE_RULE_ATTEMPTS = 8;

/**
 * The target group every agent creates: the same settings everywhere, so that ELB's idempotent
 * CreateTargetGroup answers a second host with the group the first one made. The health check
 * asks only that the app answers HTTP at all (any status below 500): the agent's own health
 * check (port, http or none) already decided the instance is RUNNING before it registers it.
 */
export function targetGroupSettings(name: string, vpcId: string) {
  return {
    Name: name,
    TargetType: 'ip' as const,
    Protocol: 'HTTP' as const,
    ProtocolVersion: 'HTTP1',
    // Only a default: every target is registered with its own net_in port.
    Port: 80,
    VpcId: vpcId,
    HealthCheckEnabled: true,
    HealthCheckProtocol: 'HTTP' as const,
    HealthCheckPort: 'traffic-port',
    HealthCheckPath: '/',
    HealthCheckIntervalSeconds: 10,
    HealthCheckTimeoutSeconds: 5,
    HealthyThresholdCount: 2,
    UnhealthyThresholdCount: 3,
    Matcher: { HttpCode: '200-499' },
  };
}

/** How often each agent looks for routes no app uses any more, and how long one must stay unused to go. */
export const SWEEP_EVERY_MS = 5 * 60_000;
export const UNUSED_ROUTE_MS = 10 * 60_000;

export interface ElbRegistrarDeps {
  logger: AgentLogger;
  /** Tests pass a client whose control plane is stubbed. */
  client?: ElasticLoadBalancingV2Client;
  /** The sweep's period (SWEEP_EVERY_MS); 0: no timer (tests call `sweep` themselves). */
  sweepEveryMs?: number;
}

interface Route {
  targetGroupArn: string;
}

const isNamed = (err: unknown, ...names: string[]) => Boolean(err && typeof err === 'object' && names.includes((err as { name?: string }).name ?? ''));

export function createElbRegistrar(config: ElbRoutesConfig, deps: ElbRegistrarDeps): ElbRegistrar {
  // Every host's agent re-registers all its instances when it starts: ELB's API rate limits are
  // per account and region, so back off adaptively and try a few more times than the default 3.
  const client = deps.client ?? new ElasticLoadBalancingV2Client({ region: config.region, retryMode: 'adaptive', maxAttempts: 6 });
  const registrar = new ElbRegistrar(config, deps.logger, client);
  const every = deps.sweepEveryMs ?? SWEEP_EVERY_MS;
  if (every > 0) registrar.sweepEvery(every);
  return registrar;
}

export class ElbRegistrar implements RouteRegistrar {
  /** One lookup (or creation) per app and process; a failed one is forgotten so the next call retries. */
  private readonly routes = new Map<string, Promise<Route>>();
  private limits?: Promise<typeof DEFAULT_LIMITS>;
  private readonly tags: Tag[];
  private readonly config: ElbRoutesConfig;
  private readonly logger: AgentLogger;
  private readonly client: ElasticLoadBalancingV2Client;
  /** Target groups of our rules seen with no target, and since when. */
  private readonly unusedSince = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(config: ElbRoutesConfig, logger: AgentLogger, client: ElasticLoadBalancingV2Client) {
    this.config = config;
    this.logger = logger;
    this.client = client;
    this.tags = [{ Key: ROUTE_TAG.listener, Value: config.listenerArn }];
  }

  async register(target: RouteTarget): Promise<void> {
    const address = this.address(target);
    let route = await this.route(target.appId);
    try {
      try {
        await this.client.send(new RegisterTargetsCommand({ TargetGroupArn: route.targetGroupArn, Targets: [address] }));
      } catch (err) {
        // The app's route was swept (by any host's agent) since this one last used it: made again.
        if (!isNamed(err, 'TargetGroupNotFoundException')) throw err;
        this.routes.delete(target.appId);
        route = await this.route(target.appId);
        await this.client.send(new RegisterTargetsCommand({ TargetGroupArn: route.targetGroupArn, Targets: [address] }));
      }
    } catch (err) {
      if (isNamed(err, 'TooManyTargetsException', 'TooManyRegistrationsForTargetIdException')) {
        throw new RouteLimitError(
          'targets-per-application-load-balancer',
          `the stack's load balancer takes no more targets (${errorMessage(err)}): instance ${target.index} of app "${target.appId}" gets no route. Stop instances or apps no longer needed, or raise the ELB targets quota in Service Quotas.`,
        );
      }
      if (isNamed(err, 'TargetGroupNotFoundException')) this.routes.delete(target.appId);
      throw err;
    }
    this.logger.info('route target registered', {
      app_id: target.appId,
      instance_id: target.instanceId,
      index: target.index,
      target: `${address.Id}:${address.Port}`,
      target_group: route.targetGroupArn,
    });
  }

  async deregister(target: RouteTarget, options: DeregisterOptions): Promise<void> {
    const onWithdrawn = withdrawnOnce(options);
    try {
      await this.deregisterTarget(target, options.drain, onWithdrawn);
    } finally {
      onWithdrawn();
    }
  }

  private async deregisterTarget(target: RouteTarget, drain: boolean, onWithdrawn: () => void): Promise<void> {
    const address = this.address(target);
    const targetGroupArn = await this.existingTargetGroup(target.appId);
    if (!targetGroupArn) return;
    const fields = { app_id: target.appId, instance_id: target.instanceId, index: target.index, target: `${address.Id}:${address.Port}` };
    try {
      await this.client.send(new DeregisterTargetsCommand({ TargetGroupArn: targetGroupArn, Targets: [address] }));
    } catch (err) {
      // Not registered there, or the group is gone: nothing can reach the instance through it.
      if (isNamed(err, 'InvalidTargetException', 'TargetGroupNotFoundException')) return;
      throw err;
    }
    // Draining: the load balancer sends it no new request.
    onWithdrawn();
    if (!drain) {
      this.logger.info('route target deregistered', { ...fields, drained: false });
      return;
    }
    const started = Date.now();
    const { minDelaySeconds, maxDelaySeconds, slackSeconds } = this.config.drainPoll;
    try {
      await waitUntilTargetDeregistered(
        {
          client: this.client,
          maxWaitTime: this.config.drainSeconds + slackSeconds,
          minDelay: minDelaySeconds,
          maxDelay: Math.max(minDelaySeconds, maxDelaySeconds),
        },
        { TargetGroupArn: targetGroupArn, Targets: [address] },
      );
      this.logger.info('route target deregistered', { ...fields, drained: true, drain_ms: Date.now() - started });
    } catch (err) {
      // The interface promises a bounded drain: the instance stops now, drained or not.
      this.logger.warn('route target drain did not finish', {
        ...fields,
        drain_ms: Date.now() - started,
        drain_seconds: this.config.drainSeconds,
        error: errorMessage(err),
      });
    }
  }

  /**
   * Removes the routes no app uses any more, so that apps stopped for good do not hold the
   * listener's rule and target-group quotas for ever: a rule of ours whose target group has had
   * no target (every host deregistered its instances) for `unusedMs` is deleted, then its group.
   * Every agent sweeps; two deleting at once is harmless, and a registration that finds its
   * group gone makes the route again.
   */
  async sweep(now = Date.now(), unusedMs = UNUSED_ROUTE_MS): Promise<void> {
    const seen = new Set<string>();
    for (const rule of await this.listRules()) {
      const targetGroupArn = forwardsTo(rule);
      if (rule.IsDefault || !targetGroupArn) continue;
      seen.add(targetGroupArn);
      let targets: number;
      try {
        const out = await this.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }));
        targets = out.TargetHealthDescriptions?.length ?? 0;
      } catch (err) {
        if (!isNamed(err, 'TargetGroupNotFoundException')) throw err;
        targets = 0;
      }
      if (targets > 0) {
        this.unusedSince.delete(targetGroupArn);
        continue;
      }
      const since = this.unusedSince.get(targetGroupArn);
      if (since === undefined) this.unusedSince.set(targetGroupArn, now);
      if (since === undefined || now - since < unusedMs) continue;
      if (!(await this.isOurs(rule.RuleArn!))) continue;
      await this.removeRoute(rule, targetGroupArn, now - since);
      this.unusedSince.delete(targetGroupArn);
    }
    for (const arn of this.unusedSince.keys()) if (!seen.has(arn)) this.unusedSince.delete(arn);
  }

  private async removeRoute(rule: Rule, targetGroupArn: string, unusedForMs: number): Promise<void> {
    try {
      await this.client.send(new DeleteRuleCommand({ RuleArn: rule.RuleArn }));
    } catch (err) {
      if (!isNamed(err, 'RuleNotFoundException')) throw err;
    }
    try {
      await this.client.send(new DeleteTargetGroupCommand({ TargetGroupArn: targetGroupArn }));
    } catch (err) {
      // Gone already (another host swept it), or still used by a rule someone else made.
      if (!isNamed(err, 'TargetGroupNotFoundException', 'ResourceInUseException')) throw err;
    }
    for (const [appId, route] of this.routes) {
      if ((await route.catch(() => undefined))?.targetGroupArn === targetGroupArn) this.routes.delete(appId);
    }
    this.logger.info('unused route removed', {
      hosts: rulesHosts(rule),
      rule: rule.RuleArn,
      target_group: targetGroupArn,
      unused_seconds: Math.round(unusedForMs / 1000),
    });
  }

  /** Sweeps every `ms` (jittered, so that a fleet's agents do not call ELB together), until close. */
  sweepEvery(ms: number): void {
    const next = () => {
      if (this.closed) return;
      this.timer = setTimeout(
        () =>
          void this.sweep()
            .catch((err) => this.logger.warn('could not sweep unused routes', { error: errorMessage(err) }))
            .finally(next),
        ms * (0.75 + Math.random() / 2),
      );
      this.timer.unref();
    };
    next();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private address(target: RouteTarget): { Id: string; Port: number } {
    if (!isIPv4(target.host) || target.host.startsWith('127.')) {
      throw new RouteTargetError(
        `instance ${target.index} of app "${target.appId}" advertises ${target.host}, which a load balancer cannot reach: ip targets need the host's private IPv4 address (set DROPWARDEN_AGENT_ADVERTISE_HOST, or leave it unset to use the default route's interface)`,
      );
    }
    return { Id: target.host, Port: target.port };
  }

  private route(appId: string): Promise<Route> {
    let route = this.routes.get(appId);
    if (!route) {
      route = this.ensureRoute(appId);
      this.routes.set(appId, route);
      route.catch(() => this.routes.delete(appId));
    }
    return route;
  }

  /** The app's target group, if it exists; never creates one. */
  private async existingTargetGroup(appId: string): Promise<string | undefined> {
    const known = this.routes.get(appId);
    if (known) {
      try {
        return (await known).targetGroupArn;
      } catch {
        // fall through to a lookup
      }
    }
    return (await this.findTargetGroup(targetGroupName(this.config.listenerArn, appId)))?.TargetGroupArn;
  }

  private async ensureRoute(appId: string): Promise<Route> {
    const host = routeHost(appId, this.config.domain);
    const name = targetGroupName(this.config.listenerArn, appId);
    let rules = await this.listRules();
    const existing = rulesFor(rules, host);
    if (!existing.length) await this.checkRoom(rules, appId);

    const targetGroupArn = await this.targetGroup(appId, name);
    await this.client.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: targetGroupArn,
        Attributes: [
          { Key: 'deregistration_delay.timeout_seconds', Value: String(this.config.drainSeconds) },
          { Key: 'load_balancing.algorithm.type', Value: 'least_outstanding_requests' },
        ],
      }),
    );

    const current = existing.find((r) => forwardsTo(r) === targetGroupArn);
    if (current) return { targetGroupArn };
    if (existing.length) {
      // A rule for this host forwards elsewhere: repoint it if it is ours (its group was replaced).
      const [rule] = existing;
      if (!(await this.isOurs(rule.RuleArn!))) {
        throw new RouteConflictError(
          `listener rule ${rule.RuleArn} already routes ${host} and was not made by dropwarden: app "${appId}" gets no route. Remove that rule or push the app under another id.`,
        );
      }
      await this.client.send(new ModifyRuleCommand({ RuleArn: rule.RuleArn, Actions: [forward(targetGroupArn)] }));
      this.logger.info('route rule repointed', { app_id: appId, host, rule: rule.RuleArn, target_group: targetGroupArn });
      return { targetGroupArn };
    }

    for (let attempt = 1; ; attempt++) {
      const priority = lowestFreePriority(rules);
      try {
        const out = await this.client.send(
          new CreateRuleCommand({
            ListenerArn: this.config.listenerArn,
            Priority: priority,
            Conditions: [{ Field: 'host-header', HostHeaderConfig: { Values: [host] } }],
            Actions: [forward(targetGroupArn)],
            Tags: [...this.tags, { Key: ROUTE_TAG.app, Value: appId }],
          }),
        );
        const ruleArn = out.Rules?.[0]?.RuleArn ?? '';
        await this.keepOneRule(appId, host, ruleArn);
        this.logger.info('route created', { app_id: appId, host, priority, rule: ruleArn, target_group: targetGroupArn });
        return { targetGroupArn };
      } catch (err) {
        if (isNamed(err, 'TooManyRulesException')) throw this.rulesFull(appId, errorMessage(err));
        if (isNamed(err, 'TooManyTargetGroupsException', 'TooManyUniqueTargetGroupsPerLoadBalancerException')) {
          throw this.targetGroupsFull(appId, errorMessage(err));
        }
        if (!isNamed(err, 'PriorityInUseException') || attempt >= CREATE_RULE_ATTEMPTS) throw err;
        // Another host took the priority: for this app (then its rule is the route), or another.
        rules = await this.listRules();
        const theirs = rulesFor(rules, host).find((r) => forwardsTo(r) === targetGroupArn);
        this.logger.debug('route rule priority taken', { app_id: appId, priority, attempt, resolved: Boolean(theirs) });
        if (theirs) return { targetGroupArn };
      }
    }
  }

  /**
   * Two hosts that read the rules at different moments can each create a rule for the same host.
   * Both then see both: the lowest priority wins, and the one that made the other deletes its own.
   */
  private async keepOneRule(appId: string, host: string, ours: string): Promise<void> {
    const forHost = rulesFor(await this.listRules(), host).sort((a, b) => Number(a.Priority) - Number(b.Priority));
    if (forHost.length < 2 || forHost[0].RuleArn === ours) return;
    try {
      await this.client.send(new DeleteRuleCommand({ RuleArn: ours }));
    } catch (err) {
      if (!isNamed(err, 'RuleNotFoundException')) throw err;
    }
    this.logger.info('route rule duplicate removed', { app_id: appId, host, removed: ours, kept: forHost[0].RuleArn });
  }

  /** Refuses a new route the listener cannot hold, before anything is created for it. */
  private async checkRoom(rules: Rule[], appId: string): Promise<void> {
    const limits = await this.accountLimits();
    const own = rules.filter((r) => !r.IsDefault);
    if (own.length >= limits.rules) {
      throw this.rulesFull(appId, `${own.length} of ${limits.rules} rules are in use`);
    }
    const groups = new Set(own.map(forwardsTo).filter(Boolean));
    if (groups.size >= limits.targetGroups) {
      throw this.targetGroupsFull(appId, `${groups.size} of ${limits.targetGroups} target groups are in use`);
    }
  }

  private rulesFull(appId: string, detail: string): RouteLimitError {
    return new RouteLimitError(
      RULES_QUOTA,
      `the stack's load balancer has no room for another route (${detail}; ELB quota ${RULES_QUOTA}): app "${appId}" gets no route. Stop apps no longer needed, or raise the quota in Service Quotas, then push again.`,
    );
  }

  private targetGroupsFull(appId: string, detail: string): RouteLimitError {
    return new RouteLimitError(
      TARGET_GROUPS_QUOTA,
      `the stack's load balancer has no room for another app's target group (${detail}; ELB quota ${TARGET_GROUPS_QUOTA}): app "${appId}" gets no route. Stop apps no longer needed, or raise the quota in Service Quotas, then push again.`,
    );
  }

  private accountLimits(): Promise<typeof DEFAULT_LIMITS> {
    this.limits ??= (async () => {
      try {
        const out = await this.client.send(new DescribeAccountLimitsCommand({}));
        const max = (name: string, fallback: number) => {
          const value = Number(out.Limits?.find((l) => l.Name === name)?.Max);
          return Number.isInteger(value) && value > 0 ? value : fallback;
        };
        return { rules: max(RULES_QUOTA, DEFAULT_LIMITS.rules), targetGroups: max(TARGET_GROUPS_QUOTA, DEFAULT_LIMITS.targetGroups) };
      } catch (err) {
        this.limits = undefined;
        this.logger.warn('route limits unreadable, assuming the ELB defaults', { error: errorMessage(err), ...DEFAULT_LIMITS });
        return DEFAULT_LIMITS;
      }
    })();
    return this.limits;
  }

  /** Finds the app's target group by name, else creates it; either way it must carry this listener's tag. */
  private async targetGroup(appId: string, name: string): Promise<string> {
    const found = await this.findTargetGroup(name);
    if (found) {
      if (!(await this.isOurs(found.TargetGroupArn!))) {
        throw new RouteConflictError(
          `target group ${name} exists but is not tagged ${ROUTE_TAG.listener}=${this.config.listenerArn}: dropwarden did not make it for this stack. Delete or rename it, then push app "${appId}" again.`,
        );
      }
      return found.TargetGroupArn!;
    }
    try {
      const out = await this.client.send(
        new CreateTargetGroupCommand({
          ...targetGroupSettings(name, this.config.vpcId),
          Tags: [...this.tags, { Key: ROUTE_TAG.app, Value: appId }],
        }),
      );
      const arn = out.TargetGroups?.[0]?.TargetGroupArn ?? '';
      this.logger.info('route target group created', { app_id: appId, target_group: arn, name });
      return arn;
    } catch (err) {
      if (isNamed(err, 'TooManyTargetGroupsException')) throw this.targetGroupsFull(appId, errorMessage(err));
      // Another host created it between our lookup and our create, with other settings (an older agent).
      if (!isNamed(err, 'DuplicateTargetGroupNameException')) throw err;
      const raced = await this.findTargetGroup(name);
      if (!raced) throw err;
      if (!(await this.isOurs(raced.TargetGroupArn!))) {
        throw new RouteConflictError(
          `target group ${name} was just created by someone else, without the tag ${ROUTE_TAG.listener}=${this.config.listenerArn}. Delete or rename it, then push app "${appId}" again.`,
        );
      }
      return raced.TargetGroupArn!;
    }
  }

  private async findTargetGroup(name: string): Promise<TargetGroup | undefined> {
    try {
      const out = await this.client.send(new DescribeTargetGroupsCommand({ Names: [name] }));
      return out.TargetGroups?.[0];
    } catch (err) {
      if (isNamed(err, 'TargetGroupNotFoundException')) return undefined;
      throw err;
    }
  }

  private async isOurs(arn: string): Promise<boolean> {
    const out = await this.client.send(new DescribeTagsCommand({ ResourceArns: [arn] }));
    const tags = out.TagDescriptions?.find((d) => d.ResourceArn === arn)?.Tags ?? [];
    return tags.some((t) => t.Key === ROUTE_TAG.listener && t.Value === this.config.listenerArn);
  }

  private async listRules(): Promise<Rule[]> {
    const rules: Rule[] = [];
    let marker: string | undefined;
    do {
      const out = await this.client.send(new DescribeRulesCommand({ ListenerArn: this.config.listenerArn, PageSize: 400, Marker: marker }));
      rules.push(...(out.Rules ?? []));
      marker = out.NextMarker;
    } while (marker);
    return rules;
  }
}

function forward(targetGroupArn: string) {
  return { Type: 'forward' as const, TargetGroupArn: targetGroupArn };
}

/** The target group a rule forwards to (one, as dropwarden's rules do), if any. */
function forwardsTo(rule: Rule): string | undefined {
  const action = rule.Actions?.find((a) => a.Type === 'forward');
  return action?.TargetGroupArn ?? action?.ForwardConfig?.TargetGroups?.[0]?.TargetGroupArn;
}

function rulesFor(rules: Rule[], host: string): Rule[] {
  return rules.filter(
    (r) =>
      !r.IsDefault &&
      (r.Conditions ?? []).some((c) => c.Field === 'host-header' && [...(c.HostHeaderConfig?.Values ?? []), ...(c.Values ?? [])].some((v) => v.toLowerCase() === host)),
  );
}

function rulesHosts(rule: Rule): string[] {
  return (rule.Conditions ?? []).flatMap((c) => (c.Field === 'host-header' ? [...(c.HostHeaderConfig?.Values ?? [])] : []));
}

function lowestFreePriority(rules: Rule[]): number {
  const taken = new Set(rules.filter((r) => !r.IsDefault).map((r) => Number(r.Priority)));
  for (let p = 1; p <= MAX_PRIORITY; p++) if (!taken.has(p)) return p;
  throw new RouteLimitError(RULES_QUOTA, `the listener has used every rule priority (1–${MAX_PRIORITY})`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
