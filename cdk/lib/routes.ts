/**
 * The apps' routes (DESIGN §7, §13): an Application Load Balancer whose listener answers an
 * unknown host with a fixed 404. The agents add one target group and one host-header rule per
 * app at run time (container-host/agent/routes/elb-registrar.ts); this construct gives them the
 * listener, the permissions to manage exactly those resources, and the only way into the hosts'
 * app ports.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Peer, Port, SecurityGroup, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { ApplicationLoadBalancer, ApplicationProtocol, ListenerAction, ListenerCertificate, SslPolicy } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { ApplicationListener } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { AccountPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ARecord, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { LoadBalancerTarget } from 'aws-cdk-lib/aws-route53-targets';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { FactName } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { ROUTE_TAG, TARGET_GROUP_NAME_PREFIX } from '../../contracts/elb-routes.ts';
import { SETTING } from '../../contracts/settings.ts';
import type { HostSettings, RouteSettings } from './config.ts';
import { type ContainerHosts, VPC_CIDR } from './container-hosts.ts';
import { acknowledge, attRef } from './nag.ts';

export interface RoutesProps {
  settings: RouteSettings;
  hostSettings: HostSettings;
  hosts: ContainerHosts;
  /** The stack's access-log bucket: the load balancer writes under `load-balancer/`. */
  accessLogs: Bucket;
}

export const ACCESS_LOG_PREFIX = 'load-balancer';
export const NOT_FOUND_BODY = 'No app is routed at this host name: check the URL, or push the app (dropwarden push).';

export class Routes extends Construct {
  readonly loadBalancer: ApplicationLoadBalancer;
  readonly securityGroup: SecurityGroup;
  /** The listener the agents add their rules to: HTTPS with a certificate, else HTTP. */
  readonly listener: ApplicationListener;
  /** What `config --stack` prints as the routes: `https://{app}.<domain>` or `http://…`. */
  readonly routeTemplate: string;

  constructor(scope: Construct, id: string, props: RoutesProps) {
    super(scope, id);
    const { settings, hosts } = props;
    const tls = Boolean(settings.certificateArn);
    this.routeTemplate = `${tls ? 'https' : 'http'}://{app}.${settings.domain}`;

    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: hosts.vpc,
      description: 'dropwarden load balancer: the app routes',
      allowAllOutbound: false,
    });
    const clients = settings.internetFacing ? Peer.anyIpv4() : Peer.ipv4(VPC_CIDR);
    for (const port of tls ? [80, 443] : [80]) {
      this.securityGroup.addIngressRule(clients, Port.tcp(port), `app routes (${port === 443 ? 'HTTPS' : 'HTTP'})`);
    }
    if (settings.internetFacing) {
      acknowledge(this.securityGroup, 'AwsSolutions-EC23', "An internet-facing load balancer serves the apps' routes to anyone on 80/443; nothing else is open.");
    }

    this.loadBalancer = new ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: hosts.vpc,
      internetFacing: settings.internetFacing,
      vpcSubnets: { subnetType: settings.internetFacing ? SubnetType.PUBLIC : SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: this.securityGroup,
      dropInvalidHeaderFields: true,
      idleTimeout: Duration.seconds(60),
    });
    // Only the load balancer reaches the instances, and it reaches nothing else.
    this.loadBalancer.connections.allowTo(
      hosts.securityGroup,
      Port.tcpRange(props.hostSettings.appPortFrom, props.hostSettings.appPortTo),
      'app instances (warden net_in ports), from the load balancer only',
    );
    this.accessLogs(props.accessLogs);

    const notFound = ListenerAction.fixedResponse(404, { contentType: 'text/plain', messageBody: NOT_FOUND_BODY });
    if (tls) {
      this.listener = this.loadBalancer.addListener('Https', {
        protocol: ApplicationProtocol.HTTPS,
        port: 443,
        open: false,
        certificates: [ListenerCertificate.fromArn(settings.certificateArn!)],
        sslPolicy: SslPolicy.RECOMMENDED_TLS,
        defaultAction: notFound,
      });
      this.loadBalancer.addListener('Http', {
        protocol: ApplicationProtocol.HTTP,
        port: 80,
        open: false,
        defaultAction: ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
      });
    } else {
      this.listener = this.loadBalancer.addListener('Http', {
        protocol: ApplicationProtocol.HTTP,
        port: 80,
        open: false,
        defaultAction: notFound,
      });
    }

    if (settings.hostedZoneId) {
      new ARecord(this, 'WildcardRecord', {
        zone: HostedZone.fromHostedZoneId(this, 'Zone', settings.hostedZoneId),
        recordName: `*.${settings.domain}.`,
        target: RecordTarget.fromAlias(new LoadBalancerTarget(this.loadBalancer)),
      });
    }

    hosts.container.addEnvironment(SETTING.routesListenerArn, this.listener.listenerArn);
    hosts.container.addEnvironment(SETTING.routesVpcId, hosts.vpc.vpcId);
    hosts.container.addEnvironment(SETTING.routesDomain, settings.domain);
    hosts.container.addEnvironment(SETTING.routesDrainSeconds, String(settings.drainSeconds));
    this.grant(hosts);
  }

  /**
   * The agents' ELB permissions: create target groups named `dw-…` and rules on this load
   * balancer only when the request tags them with this listener, and change, register into or
   * delete only what carries that tag. ELB's Describe calls take no resource.
   */
  private grant(hosts: ContainerHosts): void {
    const stack = Stack.of(this);
    const listenerArn = this.listener.listenerArn;
    const targetGroups = stack.formatArn({ service: 'elasticloadbalancing', resource: 'targetgroup', resourceName: `${TARGET_GROUP_NAME_PREFIX}*/*` });
    const rules = stack.formatArn({
      service: 'elasticloadbalancing',
      resource: 'listener-rule',
      resourceName: `${this.loadBalancer.loadBalancerFullName}/*/*`,
    });
    const taggedOnCreate = { StringEquals: { [`aws:RequestTag/${ROUTE_TAG.listener}`]: listenerArn } };
    const tagged = { StringEquals: { [`aws:ResourceTag/${ROUTE_TAG.listener}`]: listenerArn } };
    const statements = [
      new PolicyStatement({ actions: ['elasticloadbalancing:CreateTargetGroup'], resources: [targetGroups], conditions: taggedOnCreate }),
      new PolicyStatement({ actions: ['elasticloadbalancing:CreateRule'], resources: [listenerArn, rules], conditions: taggedOnCreate }),
      // Tags only as part of those creates (ELB authorizes tag-on-create as AddTags).
      new PolicyStatement({
        actions: ['elasticloadbalancing:AddTags'],
        resources: [targetGroups, rules],
        conditions: {
          StringEquals: {
            'elasticloadbalancing:CreateAction': ['CreateTargetGroup', 'CreateRule'],
            [`aws:RequestTag/${ROUTE_TAG.listener}`]: listenerArn,
          },
        },
      }),
      new PolicyStatement({
        actions: [
          'elasticloadbalancing:ModifyTargetGroupAttributes',
          'elasticloadbalancing:RegisterTargets',
          'elasticloadbalancing:DeregisterTargets',
          // The agents' sweep of routes no app uses any more.
          'elasticloadbalancing:DeleteTargetGroup',
        ],
        resources: [targetGroups],
        conditions: tagged,
      }),
      new PolicyStatement({ actions: ['elasticloadbalancing:ModifyRule', 'elasticloadbalancing:DeleteRule'], resources: [rules], conditions: tagged }),
      new PolicyStatement({
        actions: [
          'elasticloadbalancing:DescribeRules',
          'elasticloadbalancing:DescribeTargetGroups',
          'elasticloadbalancing:DescribeTags',
          'elasticloadbalancing:DescribeTargetHealth',
          'elasticloadbalancing:DescribeAccountLimits',
        ],
        resources: ['*'],
      }),
    ];
    for (const statement of statements) hosts.taskRole.addToPolicy(statement);
    const policy = hosts.taskRole.node.findChild('DefaultPolicy');
    acknowledge(
      policy,
      'AwsSolutions-IAM5[Resource::*]',
      'ELB Describe* calls (rules, target groups, tags, target health, limits) take no resource; all else is scoped.',
    );
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:targetgroup/${TARGET_GROUP_NAME_PREFIX}*/*]`,
      'Agents create one target group per app at run time: dw-* names, and only ones tagged with this listener.',
    );
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:<AWS::Region>:<AWS::AccountId>:listener-rule/${attRef(this.loadBalancer, 'LoadBalancerFullName')}/*/*]`,
      'Agents add one rule per app at run time: rules of this load balancer only, and only ones tagged with its listener.',
    );
  }

  /**
   * Access logs into the stack's log bucket. The stack is region-agnostic, so the writer is
   * looked up per region at deploy time: the region's ELB account where it has one (older
   * regions), and ELB's log-delivery service (newer ones) in any case.
   */
  private accessLogs(bucket: Bucket): void {
    const stack = Stack.of(this);
    const objects = bucket.arnForObjects(`${ACCESS_LOG_PREFIX}/AWSLogs/${stack.account}/*`);
    // A region without an ELB account gets this account itself, which grants nothing new.
    const elbAccount = stack.regionalFact(FactName.ELBV2_ACCOUNT, stack.account);
    bucket.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['s3:PutObject'],
        principals: [new AccountPrincipal(elbAccount), new ServicePrincipal('logdelivery.elasticloadbalancing.amazonaws.com')],
        resources: [objects],
      }),
    );
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
    this.loadBalancer.setAttribute('access_logs.s3.prefix', ACCESS_LOG_PREFIX);
    // ELB checks that it may write there when logging is switched on.
    if (bucket.policy) this.loadBalancer.node.addDependency(bucket.policy);
  }
}
