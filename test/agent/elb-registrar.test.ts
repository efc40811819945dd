/**
 * The ELB registrar against a stubbed ELBv2 control plane: aws-sdk-client-mock answers the real
 * @aws-sdk/client-elastic-load-balancing-v2 commands from a small in-memory model of one
 * listener (its rules, target groups, tags and target states), and the tests assert the exact
 * calls and parameters. Two registrars on one model stand for two hosts' agents.
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
  DuplicateTargetGroupNameException,
  ElasticLoadBalancingV2Client,
  InvalidTargetException,
  ModifyRuleCommand,
  ModifyTargetGroupAttributesCommand,
  PriorityInUseException,
  RegisterTargetsCommand,
  ResourceInUseException,
  RuleNotFoundException,
  TargetGroupNotFoundException,
  TooManyRulesException,
  TooManyTargetsException,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Rule, Tag } from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AgentLogger, LogFields } from '../../container-host/agent/log.ts';
import { RoutesConfigError, elbRoutesConfigFromEnv } from '../../container-host/agent/routes/elb-config.ts';
import type { ElbRoutesConfig } from '../../container-host/agent/routes/elb-config.ts';
import { routeHost, targetGroupName } from '../../container-host/agent/routes/elb-names.ts';
import { createElbRegistrar, targetGroupSettings } from '../../container-host/agent/routes/elb-registrar.ts';
import { RouteConflictError, RouteLimitError, RouteRefusedError, RouteTargetError } from '../../container-host/agent/routes/errors.ts';
import type { RouteTarget } from '../../container-host/agent/routes/registrar.ts';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const LISTENER = `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:listener/app/Dropw-Route-1A2B/50dc6c495c0c9188/f2f7dc8efc522ab2`;
const VPC = 'vpc-0a1b2c3d4e5f67890';
const DOMAIN = 'apps.example.com';
const OURS: Tag = { Key: 'dropwarden:listener', Value: LISTENER };

const config: ElbRoutesConfig = {
  listenerArn: LISTENER,
  region: REGION,
  vpcId: VPC,
  domain: DOMAIN,
  drainSeconds: 7,
  drainPoll: { minDelaySeconds: 1, maxDelaySeconds: 1, slackSeconds: 2 },
};

const target = (appId: string, index = 0, host = '10.64.16.5', port = 61001 + index): RouteTarget => ({ appId, instanceId: `${appId}-i${index}`, index, host, port });

const meta = { $metadata: {} };
const fail = <T extends Error>(E: new (o: any) => T, message: string): T => new E({ message, $metadata: {} });

interface ModelRule {
  arn: string;
  priority: number;
  host: string;
  targetGroupArn: string;
  tags: Tag[];
}
interface ModelGroup {
  arn: string;
  name: string;
  settings: Record<string, unknown>;
  tags: Tag[];
  attributes: Record<string, string>;
}

/** One listener's state, as ELB would keep it. */
class ElbModel {
  rules: ModelRule[] = [];
  groups: ModelGroup[] = [];
  /** State per target group arn and `ip:port`: `healthy`, `draining` (polls left) or gone. */
  targets = new Map<string, Map<string, { state: string; drainPolls: number }>>();
  limits = { rules: '100', targetGroups: '100' };
  drainPolls = 0;
  private ids = 0;
  /** Runs before CreateRule answers: what another host does meanwhile. */
  beforeCreateRule?: (priority: number) => void;

  nextId(): string {
    return (++this.ids).toString(16).padStart(16, '0');
  }

  addRule(host: string, targetGroupArn: string, priority: number, tags: Tag[] = [OURS]): ModelRule {
    const rule = { arn: `${LISTENER.replace(':listener/', ':listener-rule/')}/${this.nextId()}`, priority, host, targetGroupArn, tags };
    this.rules.push(rule);
    return rule;
  }

  addGroup(name: string, tags: Tag[] = [OURS], settings: Record<string, unknown> = targetGroupSettings(name, VPC)): ModelGroup {
    const group = { arn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/${name}/${this.nextId()}`, name, settings, tags, attributes: {} };
    this.groups.push(group);
    return group;
  }

  describeRules(): Rule[] {
    return [
      ...this.rules.map((r) => ({
        RuleArn: r.arn,
        Priority: String(r.priority),
        IsDefault: false,
        Conditions: [{ Field: 'host-header', Values: [r.host], HostHeaderConfig: { Values: [r.host] } }],
        Actions: [{ Type: 'forward' as const, TargetGroupArn: r.targetGroupArn, ForwardConfig: { TargetGroups: [{ TargetGroupArn: r.targetGroupArn, Weight: 1 }] } }],
      })),
      {
        RuleArn: `${LISTENER.replace(':listener/', ':listener-rule/')}/default`,
        Priority: 'default',
        IsDefault: true,
        Conditions: [],
        Actions: [{ Type: 'fixed-response' as const }],
      },
    ];
  }
}

let model: ElbModel;
const elb = mockClient(ElasticLoadBalancingV2Client);
const logs: Array<{ level: string; message: string; fields?: LogFields }> = [];
const logger: AgentLogger = {
  debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};
const registrar = () => createElbRegistrar(config, { logger, client: new ElasticLoadBalancingV2Client({ region: REGION }), sweepEveryMs: 0 });

/** Every call, as `Command input` pairs, in order. */
const calls = () => elb.calls().map((c) => [c.args[0].constructor.name.replace(/Command$/, ''), c.args[0].input] as [string, any]);
const names = () => calls().map(([name]) => name);

beforeEach(() => {
  model = new ElbModel();
  logs.length = 0;
  elb.reset();
  elb.on(DescribeAccountLimitsCommand).callsFake(async () => ({
    ...meta,
    Limits: [
      { Name: 'rules-per-application-load-balancer', Max: model.limits.rules },
      { Name: 'target-groups-per-application-load-balancer', Max: model.limits.targetGroups },
      { Name: 'listeners-per-application-load-balancer', Max: '50' },
    ],
  }));
  elb.on(DescribeRulesCommand).callsFake(async (input) => {
    expect(input.ListenerArn).toBe(LISTENER);
    return { ...meta, Rules: model.describeRules() };
  });
  elb.on(DescribeTargetGroupsCommand).callsFake(async (input) => {
    const found = model.groups.filter((g) => input.Names?.includes(g.name));
    if (!found.length) throw fail(TargetGroupNotFoundException, 'One or more target groups not found');
    return { ...meta, TargetGroups: found.map((g) => ({ TargetGroupArn: g.arn, TargetGroupName: g.name })) };
  });
  elb.on(DescribeTagsCommand).callsFake(async (input) => ({
    ...meta,
    TagDescriptions: input.ResourceArns!.map((arn: string) => ({
      ResourceArn: arn,
      Tags: [...model.groups, ...model.rules].find((r) => r.arn === arn)?.tags ?? [],
    })),
  }));
  elb.on(CreateTargetGroupCommand).callsFake(async (input) => {
    const { Tags, ...settings } = input;
    const same = model.groups.find((g) => g.name === input.Name);
    if (same) {
      // ELB's CreateTargetGroup is idempotent for the same settings.
      if (JSON.stringify(same.settings) !== JSON.stringify(settings))
        throw fail(DuplicateTargetGroupNameException, 'A target group with the same name exists, but with different settings');
      return { ...meta, TargetGroups: [{ TargetGroupArn: same.arn }] };
    }
    const group = model.addGroup(input.Name!, Tags, settings);
    return { ...meta, TargetGroups: [{ TargetGroupArn: group.arn, TargetGroupName: group.name }] };
  });
  elb.on(ModifyTargetGroupAttributesCommand).callsFake(async (input) => {
    const group = model.groups.find((g) => g.arn === input.TargetGroupArn)!;
    for (const a of input.Attributes!) group.attributes[a.Key!] = a.Value!;
    return { ...meta, Attributes: input.Attributes };
  });
  elb.on(CreateRuleCommand).callsFake(async (input) => {
    model.beforeCreateRule?.(input.Priority!);
    if (model.rules.length >= Number(model.limits.rules)) throw fail(TooManyRulesException, "You've reached the limit on the number of rules per load balancer");
    if (model.rules.some((r) => r.priority === input.Priority)) throw fail(PriorityInUseException, `Priority '${input.Priority}' is currently in use`);
    const rule = model.addRule(input.Conditions![0].HostHeaderConfig!.Values![0], input.Actions![0].TargetGroupArn!, input.Priority!, input.Tags);
    return { ...meta, Rules: [{ RuleArn: rule.arn, Priority: String(rule.priority) }] };
  });
  elb.on(ModifyRuleCommand).callsFake(async (input) => {
    const rule = model.rules.find((r) => r.arn === input.RuleArn)!;
    rule.targetGroupArn = input.Actions![0].TargetGroupArn!;
    return { ...meta, Rules: [] };
  });
  elb.on(DeleteRuleCommand).callsFake(async (input) => {
    const before = model.rules.length;
    model.rules = model.rules.filter((r) => r.arn !== input.RuleArn);
    if (model.rules.length === before) throw fail(RuleNotFoundException, 'One or more rules not found');
    return meta;
  });
  elb.on(RegisterTargetsCommand).callsFake(async (input) => {
    if (!model.groups.some((g) => g.arn === input.TargetGroupArn)) throw fail(TargetGroupNotFoundException, 'One or more target groups not found');
    const targets = model.targets.get(input.TargetGroupArn!) ?? new Map();
    model.targets.set(input.TargetGroupArn!, targets);
    for (const t of input.Targets!) targets.set(`${t.Id}:${t.Port}`, { state: 'healthy', drainPolls: 0 });
    return meta;
  });
  elb.on(DeregisterTargetsCommand).callsFake(async (input) => {
    const targets = model.targets.get(input.TargetGroupArn!);
    for (const t of input.Targets!) {
      const key = `${t.Id}:${t.Port}`;
      if (!targets?.has(key)) throw fail(InvalidTargetException, `The following targets are not registered in target group: 'id=${t.Id},port=${t.Port}'`);
      targets.set(key, { state: 'draining', drainPolls: model.drainPolls });
    }
    return meta;
  });
  elb.on(DeleteTargetGroupCommand).callsFake(async (input) => {
    if (!model.groups.some((g) => g.arn === input.TargetGroupArn)) throw fail(TargetGroupNotFoundException, 'One or more target groups not found');
    if (model.rules.some((r) => r.targetGroupArn === input.TargetGroupArn))
      throw fail(ResourceInUseException, 'Target group is currently in use by a listener or a rule');
    model.groups = model.groups.filter((g) => g.arn !== input.TargetGroupArn);
    model.targets.delete(input.TargetGroupArn!);
    return meta;
  });
  elb.on(DescribeTargetHealthCommand).callsFake(async (input) => {
    if (!model.groups.some((g) => g.arn === input.TargetGroupArn)) throw fail(TargetGroupNotFoundException, 'One or more target groups not found');
    const targets = model.targets.get(input.TargetGroupArn!) ?? new Map<string, { state: string; drainPolls: number }>();
    // Without Targets: every target registered (or draining) in the group.
    const asked = input.Targets ?? [...targets.keys()].map((k) => ({ Id: k.slice(0, k.lastIndexOf(':')), Port: Number(k.slice(k.lastIndexOf(':') + 1)) }));
    const described = asked.map((t: { Id?: string; Port?: number }) => {
      const key = `${t.Id}:${t.Port}`;
      const entry = targets.get(key);
      if (entry?.state === 'draining' && entry.drainPolls-- <= 0) targets.delete(key);
      const state = targets.get(key)?.state ?? 'unused';
      return { Target: t, TargetHealth: { State: state as 'draining' } };
    });
    return {
      ...meta,
      TargetHealthDescriptions: input.Targets ? described : described.filter((d: { TargetHealth: { State: string } }) => d.TargetHealth.State !== 'unused'),
    };
  });
});

describe('register', () => {
  it('first instance of an app: finds nothing, creates the target group and the host rule at priority 1, registers the target', async () => {
    const r = registrar();
    await r.register(target('hello'));
    const name = targetGroupName(LISTENER, 'hello');
    expect(name).toMatch(/^dw-hello-[0-9a-f]{8}$/);
    const group = model.groups[0];
    expect(calls()).toEqual([
      ['DescribeRules', { ListenerArn: LISTENER, PageSize: 400, Marker: undefined }],
      ['DescribeAccountLimits', {}],
      ['DescribeTargetGroups', { Names: [name] }],
      [
        'CreateTargetGroup',
        {
          Name: name,
          TargetType: 'ip',
          Protocol: 'HTTP',
          ProtocolVersion: 'HTTP1',
          Port: 80,
          VpcId: VPC,
          HealthCheckEnabled: true,
          HealthCheckProtocol: 'HTTP',
          HealthCheckPort: 'traffic-port',
          HealthCheckPath: '/',
          HealthCheckIntervalSeconds: 10,
          HealthCheckTimeoutSeconds: 5,
          HealthyThresholdCount: 2,
          UnhealthyThresholdCount: 3,
          Matcher: { HttpCode: '200-499' },
          Tags: [OURS, { Key: 'dropwarden:app', Value: 'hello' }],
        },
      ],
      [
        'ModifyTargetGroupAttributes',
        {
          TargetGroupArn: group.arn,
          Attributes: [
            { Key: 'deregistration_delay.timeout_seconds', Value: '7' },
            { Key: 'load_balancing.algorithm.type', Value: 'least_outstanding_requests' },
          ],
        },
      ],
      [
        'CreateRule',
        {
          ListenerArn: LISTENER,
          Priority: 1,
          Conditions: [{ Field: 'host-header', HostHeaderConfig: { Values: ['hello.apps.example.com'] } }],
          Actions: [{ Type: 'forward', TargetGroupArn: group.arn }],
          Tags: [OURS, { Key: 'dropwarden:app', Value: 'hello' }],
        },
      ],
      ['DescribeRules', { ListenerArn: LISTENER, PageSize: 400, Marker: undefined }],
      ['RegisterTargets', { TargetGroupArn: group.arn, Targets: [{ Id: '10.64.16.5', Port: 61001 }] }],
    ]);
    expect(logs.filter((l) => l.level === 'info').map((l) => l.message)).toEqual(['route target group created', 'route created', 'route target registered']);
    expect(logs.find((l) => l.message === 'route created')?.fields).toMatchObject({ app_id: 'hello', host: 'hello.apps.example.com', priority: 1 });
  });

  it("a second app gets the next free priority; the app's next instance and a repeated register only RegisterTargets", async () => {
    const r = registrar();
    await r.register(target('hello'));
    await r.register(target('world'));
    expect(model.rules.map((x) => [x.host, x.priority])).toEqual([
      ['hello.apps.example.com', 1],
      ['world.apps.example.com', 2],
    ]);
    elb.resetHistory();
    await r.register(target('hello', 1));
    await r.register(target('hello', 1));
    const hello = model.groups.find((g) => g.name === targetGroupName(LISTENER, 'hello'))!;
    expect(calls()).toEqual([
      ['RegisterTargets', { TargetGroupArn: hello.arn, Targets: [{ Id: '10.64.16.5', Port: 61002 }] }],
      ['RegisterTargets', { TargetGroupArn: hello.arn, Targets: [{ Id: '10.64.16.5', Port: 61002 }] }],
    ]);
    // A gap left by a removed rule is filled first.
    model.rules = model.rules.filter((x) => x.priority !== 1);
    await r.register(target('third'));
    expect(model.rules.find((x) => x.host === 'third.apps.example.com')?.priority).toBe(1);
  });

  it('two instances of a new app registering at once create its route once', async () => {
    const r = registrar();
    await Promise.all([r.register(target('hello', 0)), r.register(target('hello', 1))]);
    expect(names().filter((n) => n.startsWith('Create'))).toEqual(['CreateTargetGroup', 'CreateRule']);
    expect([...model.targets.get(model.groups[0].arn)!.keys()]).toEqual(['10.64.16.5:61001', '10.64.16.5:61002']);
  });

  it('after an agent restart (or on another host) finds the route by name and tag, creating nothing', async () => {
    await registrar().register(target('hello'));
    elb.resetHistory();
    await registrar().register(target('hello', 1, '10.64.17.9'));
    const group = model.groups[0];
    expect(calls()).toEqual([
      ['DescribeRules', { ListenerArn: LISTENER, PageSize: 400, Marker: undefined }],
      ['DescribeTargetGroups', { Names: [targetGroupName(LISTENER, 'hello')] }],
      ['DescribeTags', { ResourceArns: [group.arn] }],
      ['ModifyTargetGroupAttributes', expect.objectContaining({ TargetGroupArn: group.arn })],
      ['RegisterTargets', { TargetGroupArn: group.arn, Targets: [{ Id: '10.64.17.9', Port: 61002 }] }],
    ]);
    expect(model.groups).toHaveLength(1);
    expect(model.rules).toHaveLength(1);
  });

  it("reads every page of the listener's rules", async () => {
    elb
      .on(DescribeRulesCommand)
      .resolvesOnce({ ...meta, Rules: [], NextMarker: 'm1' })
      .callsFake(async () => ({ ...meta, Rules: model.describeRules() }));
    await registrar().register(target('hello'));
    expect(
      calls()
        .filter(([n]) => n === 'DescribeRules')
        .slice(0, 2)
        .map(([, i]) => i.Marker),
    ).toEqual([undefined, 'm1']);
  });

  it('repoints its own rule whose target group was replaced', async () => {
    const old = model.addGroup('dw-gone-00000000');
    const rule = model.addRule('hello.apps.example.com', old.arn, 3);
    await registrar().register(target('hello'));
    const group = model.groups.find((g) => g.name === targetGroupName(LISTENER, 'hello'))!;
    expect(calls()).toContainEqual(['ModifyRule', { RuleArn: rule.arn, Actions: [{ Type: 'forward', TargetGroupArn: group.arn }] }]);
    expect(names()).not.toContain('CreateRule');
    expect(rule.targetGroupArn).toBe(group.arn);
  });

  it('leaves a rule or a target group dropwarden did not make alone, and says so', async () => {
    const foreign = model.addGroup('someone-else');
    model.addRule('hello.apps.example.com', foreign.arn, 1, [{ Key: 'team', Value: 'web' }]);
    const err = await registrar()
      .register(target('hello'))
      .catch((e) => e);
    expect(err).toBeInstanceOf(RouteConflictError);
    expect(err).toBeInstanceOf(RouteRefusedError);
    expect(err.message).toMatch(/already routes hello\.apps\.example\.com and was not made by dropwarden/);
    expect(names()).not.toContain('ModifyRule');

    model.rules = [];
    model.addGroup(targetGroupName(LISTENER, 'other'), [{ Key: 'team', Value: 'web' }]);
    const err2 = await registrar()
      .register(target('other'))
      .catch((e) => e);
    expect(err2).toBeInstanceOf(RouteConflictError);
    expect(err2.message).toContain(`is not tagged dropwarden:listener=${LISTENER}`);
    expect(names()).not.toContain('CreateRule');
  });

  it('a control-plane failure is thrown as it is (worth a retry), and the next register tries the route again', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    elb
      .on(DescribeRulesCommand)
      .rejectsOnce(throttled)
      .callsFake(async () => ({ ...meta, Rules: model.describeRules() }));
    const r = registrar();
    const err = await r.register(target('hello')).catch((e) => e);
    expect(err).toBe(throttled);
    expect(err).not.toBeInstanceOf(RouteRefusedError);
    await r.register(target('hello'));
    expect(model.rules).toHaveLength(1);
    expect([...model.targets.get(model.groups[0].arn)!.keys()]).toEqual(['10.64.16.5:61001']);
  });

  it('refuses an address a load balancer cannot reach', async () => {
    for (const host of ['127.0.0.1', 'ip-10-0-0-1.ec2.internal', '::1']) {
      const err = await registrar()
        .register(target('hello', 0, host))
        .catch((e) => e);
      expect(err).toBeInstanceOf(RouteTargetError);
      expect(err).toBeInstanceOf(RouteRefusedError);
      expect(err.message).toContain(`advertises ${host}`);
    }
    expect(calls()).toEqual([]);
  });
});

describe('races between hosts', () => {
  it('two hosts registering the same new app at once end with one target group and one rule', async () => {
    const [a, b] = [registrar(), registrar()];
    await Promise.all([a.register(target('hello', 0, '10.64.16.5')), b.register(target('hello', 1, '10.64.17.9'))]);
    expect(model.groups).toHaveLength(1);
    expect(model.rules).toHaveLength(1);
    expect(model.rules[0]).toMatchObject({ priority: 1, host: 'hello.apps.example.com', targetGroupArn: model.groups[0].arn });
    expect([...model.targets.get(model.groups[0].arn)!.keys()].sort()).toEqual(['10.64.16.5:61001', '10.64.17.9:61002']);
    // Both read the rules before either created one, so one of them lost priority 1 and found the winner's rule.
    expect(logs.find((l) => l.message === 'route rule priority taken')?.fields).toMatchObject({ priority: 1, resolved: true });
  });

  it('two hosts creating rules for different apps at once take different priorities', async () => {
    const [a, b] = [registrar(), registrar()];
    await Promise.all([a.register(target('hello')), b.register(target('world'))]);
    expect(model.rules.map((r) => r.priority).sort()).toEqual([1, 2]);
    expect(new Set(model.rules.map((r) => r.host))).toEqual(new Set(['hello.apps.example.com', 'world.apps.example.com']));
    expect(names().filter((n) => n === 'CreateRule')).toHaveLength(3);
  });

  it("a host whose target group create loses to another host's (other settings) uses that group", async () => {
    const name = targetGroupName(LISTENER, 'hello');
    elb
      .on(DescribeTargetGroupsCommand)
      .rejectsOnce(fail(TargetGroupNotFoundException, 'One or more target groups not found'))
      .callsFake(async () => ({ ...meta, TargetGroups: model.groups.map((g) => ({ TargetGroupArn: g.arn, TargetGroupName: g.name })) }));
    const theirs = model.addGroup(name, [OURS], { ...targetGroupSettings(name, VPC), HealthCheckPath: '/health' });
    await registrar().register(target('hello'));
    expect(names().slice(0, 5)).toEqual(['DescribeRules', 'DescribeAccountLimits', 'DescribeTargetGroups', 'CreateTargetGroup', 'DescribeTargetGroups']);
    expect(model.groups).toHaveLength(1);
    expect(model.rules[0].targetGroupArn).toBe(theirs.arn);
  });

  it('a duplicate rule for the same host (hosts that read the rules at different moments): the one that made the higher priority deletes its own', async () => {
    const other = model.addRule('x.apps.example.com', model.addGroup('dw-x-00000000').arn, 1);
    let theirs: ModelRule | undefined;
    model.beforeCreateRule = () => {
      model.beforeCreateRule = undefined;
      // Meanwhile rule 1 went away and another host, reading after that, created this route at 1.
      model.rules = model.rules.filter((x) => x !== other);
      theirs = model.addRule('hello.apps.example.com', model.groups.find((g) => g.name === targetGroupName(LISTENER, 'hello'))!.arn, 1);
    };
    await registrar().register(target('hello'));
    const created = calls().find(([n]) => n === 'CreateRule')!;
    expect(created[1].Priority).toBe(2);
    const deleted = calls().filter(([n]) => n === 'DeleteRule');
    expect(deleted).toHaveLength(1);
    expect(deleted[0][1].RuleArn).not.toBe(theirs!.arn);
    expect(model.rules.map((x) => x.arn)).toEqual([theirs!.arn]);
    expect(logs.find((l) => l.message === 'route rule duplicate removed')?.fields).toMatchObject({ kept: theirs!.arn });
  });
});

describe('limits', () => {
  it("a new app past the listener's rule quota fails with a RouteLimitError before anything is created", async () => {
    model.limits.rules = '2';
    const r = registrar();
    await r.register(target('one'));
    await r.register(target('two'));
    elb.resetHistory();
    const err = await r.register(target('three')).catch((e) => e);
    expect(err).toBeInstanceOf(RouteLimitError);
    expect(err.quota).toBe('rules-per-application-load-balancer');
    expect(err.message).toBe(
      'the stack\'s load balancer has no room for another route (2 of 2 rules are in use; ELB quota rules-per-application-load-balancer): app "three" gets no route. Stop apps no longer needed, or raise the quota in Service Quotas, then push again.',
    );
    expect(err.message).not.toContain('\n');
    expect(err).toBeInstanceOf(RouteRefusedError);
    expect(names()).toEqual(['DescribeRules']);
    // Apps that have their routes keep registering instances.
    await r.register(target('one', 1));
  });

  it('the target-group quota is checked as well', async () => {
    model.limits.targetGroups = '1';
    const r = registrar();
    await r.register(target('one'));
    const err = await r.register(target('two')).catch((e) => e);
    expect(err).toBeInstanceOf(RouteLimitError);
    expect(err.quota).toBe('target-groups-per-application-load-balancer');
    expect(model.groups).toHaveLength(1);
  });

  it("the API's own limit errors (a race past the check, targets) become RouteLimitErrors", async () => {
    elb.on(CreateRuleCommand).rejects(fail(TooManyRulesException, "You've reached the limit on the number of rules per load balancer"));
    const err = await registrar()
      .register(target('hello'))
      .catch((e) => e);
    expect(err).toBeInstanceOf(RouteLimitError);
    expect(err.message).toContain("You've reached the limit on the number of rules per load balancer");

    elb.on(CreateRuleCommand).resolves({ ...meta, Rules: [{ RuleArn: 'r' }] });
    elb.on(RegisterTargetsCommand).rejects(fail(TooManyTargetsException, "You've reached the limit on the number of targets"));
    const err2 = await registrar()
      .register(target('hello'))
      .catch((e) => e);
    expect(err2).toBeInstanceOf(RouteLimitError);
    expect(err2.quota).toBe('targets-per-application-load-balancer');
    expect(err2.message).toMatch(/^the stack's load balancer takes no more targets .* instance 0 of app "hello" gets no route/);
  });

  it("without DescribeAccountLimits it assumes ELB's default quotas, and says so", async () => {
    elb.on(DescribeAccountLimitsCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    await registrar().register(target('hello'));
    expect(logs.find((l) => l.level === 'warn')?.fields).toMatchObject({ rules: 100, targetGroups: 100 });
  });
});

describe('deregister', () => {
  it('with drain: DeregisterTargets, then waits until the load balancer reports the target unused', async () => {
    const r = registrar();
    await r.register(target('hello'));
    model.drainPolls = 1;
    elb.resetHistory();
    const started = Date.now();
    let callsWhenWithdrawn: string[] | undefined;
    await r.deregister(target('hello'), { drain: true, onWithdrawn: () => (callsWhenWithdrawn = names()) });
    // Withdrawn once the target is draining, before the drain's polls.
    expect(callsWhenWithdrawn).toEqual(['DeregisterTargets']);
    const group = model.groups[0];
    const t = [{ Id: '10.64.16.5', Port: 61001 }];
    expect(calls()).toEqual([
      ['DeregisterTargets', { TargetGroupArn: group.arn, Targets: t }],
      ['DescribeTargetHealth', { TargetGroupArn: group.arn, Targets: t }],
      ['DescribeTargetHealth', { TargetGroupArn: group.arn, Targets: t }],
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(logs.at(-1)).toMatchObject({ message: 'route target deregistered', fields: { drained: true } });
  });

  it('without drain (a crash): DeregisterTargets only', async () => {
    const r = registrar();
    await r.register(target('hello'));
    elb.resetHistory();
    await r.deregister(target('hello'), { drain: false });
    expect(names()).toEqual(['DeregisterTargets']);
  });

  it('an unknown app or target resolves at once; a new agent finds the group by name', async () => {
    let withdrawn = 0;
    await registrar().deregister(target('never'), { drain: true, onWithdrawn: () => withdrawn++ });
    expect(withdrawn).toBe(1);
    expect(calls()).toEqual([['DescribeTargetGroups', { Names: [targetGroupName(LISTENER, 'never')] }]]);
    await registrar().register(target('hello'));
    elb.resetHistory();
    await registrar().deregister(target('hello', 3), { drain: true });
    expect(names()).toEqual(['DescribeTargetGroups', 'DeregisterTargets']);
  });

  it('a drain that outlasts the deregistration delay ends with a warning, not a hang', async () => {
    const short = createElbRegistrar({ ...config, drainSeconds: 0 }, { logger, client: new ElasticLoadBalancingV2Client({ region: REGION }), sweepEveryMs: 0 });
    await short.register(target('hello'));
    elb.on(DescribeTargetHealthCommand).resolves({ ...meta, TargetHealthDescriptions: [{ TargetHealth: { State: 'draining' } }] });
    // A 0 s delay plus the 2 s slack bounds the wait.
    const started = Date.now();
    await short.deregister(target('hello'), { drain: true });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(logs.at(-1)).toMatchObject({ level: 'warn', message: 'route target drain did not finish' });
  }, 30_000);
});

describe('settings', () => {
  const env = {
    DROPWARDEN_ROUTES_LISTENER_ARN: LISTENER,
    DROPWARDEN_ROUTES_VPC_ID: VPC,
    DROPWARDEN_ROUTES_DOMAIN: 'Apps.Example.com',
  };

  it("none set: no load balancer routes; all set: the listener's region, the domain in lower case, a 30 s drain", () => {
    expect(elbRoutesConfigFromEnv({})).toBeNull();
    expect(elbRoutesConfigFromEnv(env)).toEqual({
      listenerArn: LISTENER,
      region: REGION,
      vpcId: VPC,
      domain: 'apps.example.com',
      drainSeconds: 30,
      drainPoll: { minDelaySeconds: 2, maxDelaySeconds: 5, slackSeconds: 15 },
    });
    expect(elbRoutesConfigFromEnv({ ...env, DROPWARDEN_ROUTES_DRAIN_SECONDS: '0' })?.drainSeconds).toBe(0);
  });

  it.each([
    [{ DROPWARDEN_ROUTES_DOMAIN: 'apps.example.com' }, /DROPWARDEN_ROUTES_LISTENER_ARN and DROPWARDEN_ROUTES_VPC_ID not set/],
    [
      { ...env, DROPWARDEN_ROUTES_LISTENER_ARN: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1' },
      /is not an Application Load Balancer listener ARN/,
    ],
    [{ ...env, DROPWARDEN_ROUTES_VPC_ID: 'vpc_1' }, /is not a VPC id/],
    [{ ...env, DROPWARDEN_ROUTES_DOMAIN: 'apps.example.123' }, /must end in an alphabetic label/],
    [{ ...env, DROPWARDEN_ROUTES_DOMAIN: `${'a'.repeat(61)}.com` }, /at most 64 fit beside a 63-character app id/],
    [{ ...env, DROPWARDEN_ROUTES_DOMAIN: 'apps_x.com' }, /is not a lowercase DNS name/],
    [{ ...env, DROPWARDEN_ROUTES_DRAIN_SECONDS: '3601' }, /from 0 to 3600/],
  ])('refuses %j', (e, message) => {
    expect(() => elbRoutesConfigFromEnv(e)).toThrow(RoutesConfigError);
    expect(() => elbRoutesConfigFromEnv(e)).toThrow(message);
  });

  it("target group names fit ELB's 32 characters and stay distinct for long ids and other listeners", () => {
    const long = 'a'.repeat(63);
    const names = [
      targetGroupName(LISTENER, long),
      targetGroupName(LISTENER, `${'a'.repeat(62)}b`),
      targetGroupName(`${LISTENER}0`, long),
      targetGroupName(LISTENER, '42'),
    ];
    for (const n of names) expect(n).toMatch(/^dw-[a-z0-9-]{1,20}-[0-9a-f]{8}$/);
    for (const n of names) expect(n.length).toBeLessThanOrEqual(32);
    expect(new Set(names).size).toBe(names.length);
    expect(targetGroupName(LISTENER, 'abc-' + 'd'.repeat(15) + '-x')).not.toMatch(/--/);
    expect(routeHost('Hello', DOMAIN)).toBe('hello.apps.example.com');
  });
});

describe('sweep: routes no app uses any more', () => {
  const MIN = 60_000;
  const t0 = 1_800_000_000_000;

  it('deletes a rule of ours, then its group, once the group has had no target for 10 minutes; a route in use, or unused for less, stays', async () => {
    const r = registrar();
    await r.register(target('gone'));
    await r.register(target('busy'));
    await r.deregister(target('gone'), { drain: false });
    const [goneGroup, busyGroup] = model.groups;
    await r.sweep(t0);
    await r.sweep(t0 + 5 * MIN);
    expect(model.rules.map((x) => x.host)).toEqual([routeHost('gone', DOMAIN), routeHost('busy', DOMAIN)]);
    elb.resetHistory();
    await r.sweep(t0 + 10 * MIN);
    const goneRule = `${LISTENER.replace(':listener/', ':listener-rule/')}`;
    expect(calls().filter(([name]) => name.startsWith('Delete'))).toEqual([
      ['DeleteRule', { RuleArn: expect.stringContaining(goneRule) }],
      ['DeleteTargetGroup', { TargetGroupArn: goneGroup.arn }],
    ]);
    expect(model.rules.map((x) => x.host)).toEqual([routeHost('busy', DOMAIN)]);
    expect(model.groups.map((g) => g.arn)).toEqual([busyGroup.arn]);
    expect(logs.find((l) => l.message === 'unused route removed')?.fields).toMatchObject({
      hosts: [routeHost('gone', DOMAIN)],
      target_group: goneGroup.arn,
      unused_seconds: 600,
    });
    // Pushed again later: the route is made anew.
    await r.register(target('gone'));
    expect(model.rules.map((x) => x.host).sort()).toEqual([routeHost('busy', DOMAIN), routeHost('gone', DOMAIN)].sort());
  });

  it('keeps a group that got a target between two sweeps, and never deletes a rule it did not make', async () => {
    const r = registrar();
    await r.register(target('back'));
    await r.deregister(target('back'), { drain: false });
    const foreignGroup = model.addGroup('theirs', []);
    model.addRule(routeHost('theirs', DOMAIN), foreignGroup.arn, 900, []);
    await r.sweep(t0);
    await r.register(target('back', 1));
    await r.sweep(t0 + 11 * MIN);
    await r.sweep(t0 + 30 * MIN);
    expect(model.rules.map((x) => x.host).sort()).toEqual([routeHost('back', DOMAIN), routeHost('theirs', DOMAIN)].sort());
    expect(names()).not.toContain('DeleteRule');
    expect(names()).not.toContain('DeleteTargetGroup');
  });

  it("another host's agent, whose group was swept, makes the route again on its next registration", async () => {
    const [a, b] = [registrar(), registrar()];
    await b.register(target('moved'));
    await b.deregister(target('moved'), { drain: false });
    await a.sweep(t0);
    await a.sweep(t0 + 10 * MIN);
    expect(model.groups).toHaveLength(0);
    elb.resetHistory();
    await b.register(target('moved', 0, '10.64.16.9'));
    expect(names().slice(0, 1)).toEqual(['RegisterTargets']);
    expect(names()).toContain('CreateTargetGroup');
    expect(model.rules.map((x) => x.host)).toEqual([routeHost('moved', DOMAIN)]);
    expect([...model.targets.get(model.groups[0].arn)!.keys()]).toEqual(['10.64.16.9:61001']);
  });
});
