/**
 * The routes load balancer (DESIGN §7, §13): the synthesized ALB, its listeners and default
 * 404, the security-group rules around it, the agents' ELB permissions, the task's route
 * settings and the outputs; once as cdk.json ships it (plus the required domain), once with a
 * certificate, a hosted zone and an internal scheme.
 */
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../lib/config.ts';
import { VPC_CIDR } from '../lib/container-hosts.ts';
import { NOT_FOUND_BODY } from '../lib/routes.ts';
import { allow, logicalId, permissionsOf, resourcesOfType, synthesize, TEST_DOMAIN } from './synth.ts';
import type { Synthesized } from './synth.ts';

const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-1111-2222-3333-444455556666';
const ZONE = 'Z0123456789ABCDEFGHIJ';

let plain: Synthesized;
let tls: Synthesized;
beforeAll(() => {
  plain = synthesize();
  tls = synthesize({
    context: { 'dropwarden:certificateArn': CERTIFICATE, 'dropwarden:hostedZoneId': ZONE, 'dropwarden:loadBalancerScheme': 'internal' },
  });
});

const propsOf = (s: Synthesized, construct: Parameters<typeof logicalId>[0]) => s.json.Resources[logicalId(construct)].Properties;
const getAtt = (construct: Parameters<typeof logicalId>[0], attribute: string) => ({ 'Fn::GetAtt': [logicalId(construct), attribute] });
const notFound = { Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain', MessageBody: NOT_FOUND_BODY } };

describe('load balancer', () => {
  it('is one internet-facing application load balancer in the public subnets, dropping invalid headers, logging to the access-log bucket', () => {
    const lbs = resourcesOfType(plain.json, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(lbs).toHaveLength(1);
    const lb = propsOf(plain, plain.stack.routes.loadBalancer);
    expect(lb).toMatchObject({ Type: 'application', Scheme: 'internet-facing', SecurityGroups: [getAtt(plain.stack.routes.securityGroup, 'GroupId')] });
    const publicSubnets = plain.stack.hosts.vpc.publicSubnets.map((s) => ({ Ref: logicalId(s) }));
    expect(lb.Subnets).toEqual(publicSubnets);
    const attributes = Object.fromEntries(lb.LoadBalancerAttributes.map((a: { Key: string; Value: unknown }) => [a.Key, a.Value]));
    expect(attributes).toMatchObject({
      'routing.http.drop_invalid_header_fields.enabled': 'true',
      'access_logs.s3.enabled': 'true',
      'access_logs.s3.bucket': { Ref: logicalId(plain.stack.storage.accessLogs) },
      'access_logs.s3.prefix': 'load-balancer',
    });
  });

  it("the access-log bucket lets ELB write under load-balancer/ (the region's ELB account, or its log-delivery service), before logging is switched on", () => {
    const [[policyId, policy]] = resourcesOfType(plain.json, 'AWS::S3::BucketPolicy').filter(
      ([, r]) => JSON.stringify(r.Properties.Bucket) === JSON.stringify({ Ref: logicalId(plain.stack.storage.accessLogs) }),
    );
    const grant = policy.Properties.PolicyDocument.Statement.find((st: any) => JSON.stringify(st.Principal).includes('logdelivery.elasticloadbalancing'));
    expect(grant).toMatchObject({
      Effect: 'Allow',
      Action: 's3:PutObject',
      Principal: {
        Service: 'logdelivery.elasticloadbalancing.amazonaws.com',
        AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', expect.anything(), ':root']] },
      },
      Resource: { 'Fn::Join': ['', [getAtt(plain.stack.storage.accessLogs, 'Arn'), '/load-balancer/AWSLogs/', { Ref: 'AWS::AccountId' }, '/*']] },
    });
    const mappings = (plain.json as any).Mappings as Record<string, Record<string, Record<string, string>>>;
    const elbAccounts = Object.values(mappings).find((m) => m['us-east-1'] && Object.values(m['us-east-1']).includes('127311923021'));
    expect(elbAccounts).toBeDefined();
    expect(plain.json.Resources[logicalId(plain.stack.routes.loadBalancer)].DependsOn).toContain(policyId);
  });

  it('without a certificate: one HTTP listener on 80 whose default answer is a 404 naming no app', () => {
    const listeners = resourcesOfType(plain.json, 'AWS::ElasticLoadBalancingV2::Listener').map(([, r]) => r.Properties);
    expect(listeners).toEqual([
      {
        LoadBalancerArn: { Ref: logicalId(plain.stack.routes.loadBalancer) },
        Port: 80,
        Protocol: 'HTTP',
        DefaultActions: [notFound],
      },
    ]);
    // The agents add the rules and target groups at run time: the stack has none.
    expect(resourcesOfType(plain.json, 'AWS::ElasticLoadBalancingV2::ListenerRule')).toEqual([]);
    expect(resourcesOfType(plain.json, 'AWS::ElasticLoadBalancingV2::TargetGroup')).toEqual([]);
  });

  it('with a certificate: HTTPS on 443 carries the routes and the 404, and HTTP redirects to it', () => {
    const listeners = resourcesOfType(tls.json, 'AWS::ElasticLoadBalancingV2::Listener').map(([id, r]) => [id, r.Properties] as const);
    expect(listeners).toHaveLength(2);
    const https = propsOf(tls, tls.stack.routes.listener);
    expect(https).toEqual({
      LoadBalancerArn: { Ref: logicalId(tls.stack.routes.loadBalancer) },
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: CERTIFICATE }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
      DefaultActions: [notFound],
    });
    const http = listeners.find(([id]) => id !== logicalId(tls.stack.routes.listener))![1];
    expect(http).toMatchObject({
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } }],
    });
  });

  it('internal: in the private subnets, reachable from the VPC only; a hosted zone gets the wildcard alias', () => {
    const lb = propsOf(tls, tls.stack.routes.loadBalancer);
    expect(lb.Scheme).toBe('internal');
    expect(lb.Subnets).toEqual(tls.stack.hosts.vpc.privateSubnets.map((s) => ({ Ref: logicalId(s) })));
    expect(propsOf(tls, tls.stack.routes.securityGroup).SecurityGroupIngress).toEqual([
      { CidrIp: VPC_CIDR, Description: 'app routes (HTTP)', FromPort: 80, ToPort: 80, IpProtocol: 'tcp' },
      { CidrIp: VPC_CIDR, Description: 'app routes (HTTPS)', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' },
    ]);
    const records = resourcesOfType(tls.json, 'AWS::Route53::RecordSet').map(([, r]) => r.Properties);
    expect(records).toEqual([
      {
        HostedZoneId: ZONE,
        Name: `*.${TEST_DOMAIN}.`,
        Type: 'A',
        AliasTarget: {
          DNSName: { 'Fn::Join': ['', ['dualstack.', getAtt(tls.stack.routes.loadBalancer, 'DNSName')]] },
          HostedZoneId: getAtt(tls.stack.routes.loadBalancer, 'CanonicalHostedZoneID'),
        },
      },
    ]);
    expect(resourcesOfType(plain.json, 'AWS::Route53::RecordSet')).toEqual([]);
  });
});

describe('security groups', () => {
  it("the load balancer takes HTTP from anywhere (internet-facing) and sends only to the hosts' app ports", () => {
    const sg = propsOf(plain, plain.stack.routes.securityGroup);
    expect(sg.SecurityGroupIngress).toEqual([{ CidrIp: '0.0.0.0/0', Description: 'app routes (HTTP)', FromPort: 80, ToPort: 80, IpProtocol: 'tcp' }]);
    // No inline egress (allowAllOutbound is off): the only way out is the rule below.
    expect(sg.SecurityGroupEgress).toBeUndefined();
    const egress = resourcesOfType(plain.json, 'AWS::EC2::SecurityGroupEgress').map(([, r]) => r.Properties);
    expect(egress).toEqual([
      {
        GroupId: getAtt(plain.stack.routes.securityGroup, 'GroupId'),
        DestinationSecurityGroupId: getAtt(plain.stack.hosts.securityGroup, 'GroupId'),
        IpProtocol: 'tcp',
        FromPort: 61000,
        ToPort: 65000,
        Description: 'app instances (warden net_in ports), from the load balancer only',
      },
    ]);
  });

  it("only the load balancer's group reaches the hosts' instance port range", () => {
    const rules = resourcesOfType(plain.json, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);
    expect(rules).toEqual([
      expect.objectContaining({
        GroupId: getAtt(plain.stack.hosts.securityGroup, 'GroupId'),
        SourceSecurityGroupId: getAtt(plain.stack.routes.securityGroup, 'GroupId'),
        FromPort: 61000,
        ToPort: 65000,
      }),
    ]);
    expect(propsOf(plain, plain.stack.hosts.securityGroup).SecurityGroupIngress).toBeUndefined();
  });
});

describe('the agents', () => {
  it('get the listener, the VPC, the domain and the drain in the task environment', () => {
    const [c] = propsOf(plain, plain.stack.hosts.taskDefinition).ContainerDefinitions;
    const env = Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
    expect(env).toMatchObject({
      DROPWARDEN_ROUTES_LISTENER_ARN: { Ref: logicalId(plain.stack.routes.listener) },
      DROPWARDEN_ROUTES_VPC_ID: { Ref: logicalId(plain.stack.hosts.vpc) },
      DROPWARDEN_ROUTES_DOMAIN: TEST_DOMAIN,
      DROPWARDEN_ROUTES_DRAIN_SECONDS: '30',
    });
    const [t] = propsOf(tls, tls.stack.hosts.taskDefinition).ContainerDefinitions;
    expect(t.Environment).toContainEqual({ Name: 'DROPWARDEN_ROUTES_LISTENER_ARN', Value: { Ref: logicalId(tls.stack.routes.listener) } });
  });

  it('may create dw-* target groups and rules on this load balancer only when tagged with its listener, and touch only tagged ones', () => {
    const listener = { Ref: logicalId(plain.stack.routes.listener) };
    const arn = (resource: string) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':elasticloadbalancing:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ...resource.split('|').map((p) => (p === 'LB' ? getAtt(plain.stack.routes.loadBalancer, 'LoadBalancerFullName') : p)),
        ],
      ],
    });
    const targetGroups = {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':elasticloadbalancing:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':targetgroup/dw-*/*']],
    };
    const rules = arn(':listener-rule/|LB|/*/*');
    const onCreate = { StringEquals: { 'aws:RequestTag/dropwarden:listener': listener } };
    const tagged = { StringEquals: { 'aws:ResourceTag/dropwarden:listener': listener } };
    const elb = permissionsOf(plain.json, plain.stack.hosts.taskRole).filter((l) => l.includes(' elasticloadbalancing:'));
    expect(elb).toEqual(
      [
        ...allow(['elasticloadbalancing:CreateTargetGroup'], [targetGroups], onCreate),
        ...allow(['elasticloadbalancing:CreateRule'], [listener, rules], onCreate),
        ...allow(['elasticloadbalancing:AddTags'], [targetGroups, rules], {
          StringEquals: { 'elasticloadbalancing:CreateAction': ['CreateTargetGroup', 'CreateRule'], 'aws:RequestTag/dropwarden:listener': listener },
        }),
        ...allow(
          [
            'elasticloadbalancing:DeleteTargetGroup',
            'elasticloadbalancing:DeregisterTargets',
            'elasticloadbalancing:ModifyTargetGroupAttributes',
            'elasticloadbalancing:RegisterTargets',
          ],
          [targetGroups],
          tagged,
        ),
        ...allow(['elasticloadbalancing:DeleteRule', 'elasticloadbalancing:ModifyRule'], [rules], tagged),
        ...allow(
          [
            'elasticloadbalancing:DescribeAccountLimits',
            'elasticloadbalancing:DescribeRules',
            'elasticloadbalancing:DescribeTags',
            'elasticloadbalancing:DescribeTargetGroups',
            'elasticloadbalancing:DescribeTargetHealth',
          ],
          ['*'],
        ),
      ].sort(),
    );
    // Nothing else unscoped: the only "*" resources are the Describe calls.
    expect(permissionsOf(plain.json, plain.stack.hosts.taskRole).filter((l) => l.endsWith(' on "*"') && !l.includes(':Describe'))).toEqual([]);
  });
});

describe('outputs and settings', () => {
  it("name the route template, the domain and the load balancer's DNS name", () => {
    expect(plain.json.Outputs.RouteTemplate.Value).toBe(`http://{app}.${TEST_DOMAIN}`);
    expect(tls.json.Outputs.RouteTemplate.Value).toBe(`https://{app}.${TEST_DOMAIN}`);
    expect(plain.json.Outputs.RouteDomain.Value).toBe(TEST_DOMAIN);
    expect(plain.json.Outputs.LoadBalancerDnsName.Value).toEqual(getAtt(plain.stack.routes.loadBalancer, 'DNSName'));
  });

  it("alarm on the load balancer's own 5xx answers", () => {
    const alarm = plain.stack.operations.alarms.find((a) => a.node.id === 'LoadBalancer5xx')!;
    expect(plain.json.Resources[logicalId(alarm)].Properties).toMatchObject({
      Namespace: 'AWS/ApplicationELB',
      MetricName: 'HTTPCode_ELB_5XX_Count',
      Statistic: 'Sum',
      Threshold: 10,
      Dimensions: [{ Name: 'LoadBalancer', Value: getAtt(plain.stack.routes.loadBalancer, 'LoadBalancerFullName') }],
    });
  });

  it('the dashboard shows requests, 5xx, response times and the unhealthy targets of whichever app target groups exist', () => {
    const parts: unknown[] = plain.json.Resources[logicalId(plain.stack.operations.dashboard)].Properties.DashboardBody['Fn::Join'][1];
    const body = parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('');
    for (const metric of ['RequestCount', 'HTTPCode_ELB_5XX_Count', 'HTTPCode_Target_5XX_Count', 'TargetResponseTime']) expect(body).toContain(metric);
    // The search is scoped to this load balancer: its full name is spliced in right after `LoadBalancer="`.
    const at = parts.findIndex((p) => typeof p === 'string' && p.includes('UnHealthyHostCount'));
    expect(parts[at]).toMatch(/SEARCH\('\{AWS\/ApplicationELB,LoadBalancer,TargetGroup\} MetricName=\\"UnHealthyHostCount\\" LoadBalancer=\\"$/);
    expect(parts[at + 1]).toEqual(getAtt(plain.stack.routes.loadBalancer, 'LoadBalancerFullName'));
  });

  it('cdk-nag stays clean with a certificate, a hosted zone and the internal scheme too', () => {
    const report = new AwsSolutionsChecks().validateScope(tls.stack);
    expect(report.violations).toEqual([]);
  });

  const configOf = (context: Record<string, unknown>) => readConfig(new App({ context }).node).routes;
  it('reads the route keys, and refuses a missing domain or values that cannot work, naming the key', () => {
    expect(configOf({ 'dropwarden:domain': 'Apps.Example.com' })).toEqual({
      domain: 'apps.example.com',
      certificateArn: undefined,
      hostedZoneId: undefined,
      internetFacing: true,
      drainSeconds: 30,
    });
    expect(configOf({ 'dropwarden:domain': 'a.example.com', 'dropwarden:routeDrainSeconds': '5', 'dropwarden:loadBalancerScheme': 'internal' })).toMatchObject({
      internetFacing: false,
      drainSeconds: 5,
    });
    expect(() => configOf({})).toThrow(/context dropwarden:domain is not set.*-c dropwarden:domain=apps\.example\.com/);
    expect(() => configOf({ 'dropwarden:domain': 'apps.example.42' })).toThrow(/dropwarden:domain .* alphabetic label/);
    expect(() => configOf({ 'dropwarden:domain': 'a.b.com', 'dropwarden:certificateArn': 'arn:aws:iam::1:x' })).toThrow(
      /dropwarden:certificateArn must be an ACM certificate ARN/,
    );
    expect(() => configOf({ 'dropwarden:domain': 'a.b.com', 'dropwarden:hostedZoneId': 'example.com' })).toThrow(/dropwarden:hostedZoneId/);
    expect(() => configOf({ 'dropwarden:domain': 'a.b.com', 'dropwarden:loadBalancerScheme': 'public' })).toThrow(/dropwarden:loadBalancerScheme/);
    expect(() => configOf({ 'dropwarden:domain': 'a.b.com', 'dropwarden:routeDrainSeconds': 3601 })).toThrow(/dropwarden:routeDrainSeconds/);
  });
});
