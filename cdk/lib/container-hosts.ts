/**
 * The container-host fleet: a VPC, an ECS cluster backed by an Auto Scaling group of
 * ECS-optimized Amazon Linux 2023 hosts, and a DAEMON service that runs wardend and the agent
 * (one privileged, host-networked task per host, the depot on the host's disk).
 */
import { Duration, IgnoreMode, Stack } from 'aws-cdk-lib';
import { AutoScalingGroup, GroupMetrics, UpdatePolicy } from 'aws-cdk-lib/aws-autoscaling';
import {
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  FlowLogDestination,
  GatewayVpcEndpointAwsService,
  IpAddresses,
  InstanceType,
  LaunchTemplate,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  AmiHardwareType,
  AsgCapacityProvider,
  Cluster,
  ContainerImage,
  type ContainerDefinition,
  ContainerInsights,
  Ec2Service,
  Ec2TaskDefinition,
  EcsOptimizedImage,
  LinuxParameters,
  LogDrivers,
  NetworkMode,
  UlimitName,
} from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { HostSettings } from './config.ts';
import { acknowledge, arnRef, ref } from './nag.ts';
import type { Queues } from './queues.ts';
import { HOST_SERVICE, METRICS_NAMESPACE } from '../../contracts/metrics.ts';
import { HOST_STATE_DIR, SETTING } from '../../contracts/settings.ts';
import { POWERTOOLS } from './runtime-environment.ts';
import type { Storage } from './storage.ts';

export interface ContainerHostsProps {
  settings: HostSettings;
  storage: Storage;
  queues: Queues;
  /** The repository root: the image's build context. */
  projectRoot: string;
  /** Relative to projectRoot. */
  dockerfile: string;
  logRetention: RetentionDays;
}

/** What the image build does not need; keeps the staged build context small. */
/** A literal (not the VPC's token) so that security-group rules can be checked at synth time. */
export const VPC_CIDR = '10.64.0.0/16';

const BUILD_CONTEXT_EXCLUDES = ['.git', 'node_modules', '**/node_modules', 'cdk.out', 'cdk/test', 'dist', 'coverage', 'test', '.dropwarden', '*.tgz'];

export class ContainerHosts extends Construct {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly autoScalingGroup: AutoScalingGroup;
  readonly taskDefinition: Ec2TaskDefinition;
  /** wardend + agent: cdk/lib/routes.ts adds the route settings to its environment. */
  readonly container: ContainerDefinition;
  readonly taskRole: Role;
  /** The hosts' security group: cdk/lib/routes.ts lets the load balancer reach the app ports. */
  readonly securityGroup: SecurityGroup;
  readonly service: Ec2Service;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ContainerHostsProps) {
    super(scope, id);
    const { settings } = props;

    this.vpc = this.network(settings, props.logRetention);
    this.cluster = new Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    this.securityGroup = new SecurityGroup(this, 'HostSecurityGroup', {
      vpc: this.vpc,
      description: 'dropwarden container hosts: app ports from the load balancer only',
      allowAllOutbound: true,
    });
    this.autoScalingGroup = this.hosts(settings);
    this.cluster.addAsgCapacityProvider(
      new AsgCapacityProvider(this, 'Capacity', {
        autoScalingGroup: this.autoScalingGroup,
        // The daemon service places one task per host by itself; ECS has no task backlog to scale on.
        enableManagedScaling: false,
        enableManagedTerminationProtection: false,
        // ECS drains a host itself before the group terminates it (no drain-hook Lambda and topic).
        enableManagedDraining: true,
      }),
    );

    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    this.taskRole = new Role(this, 'TaskRole', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') });
    this.grantTask(props);
    [this.taskDefinition, this.container] = this.task(props);

    this.service = new Ec2Service(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      daemon: true,
      // A host runs exactly one agent: the old one must let go of wardend's socket first.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { rollback: true },
    });
  }

  private network(settings: HostSettings, logRetention: RetentionDays): Vpc {
    const vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr(VPC_CIDR),
      maxAzs: 2,
      natGateways: settings.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'hosts', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      // Droplet downloads stay off the NAT gateway (and its per-GB charge).
      gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
    });
    vpc.addFlowLog('FlowLog', {
      destination: FlowLogDestination.toCloudWatchLogs(new LogGroup(this, 'FlowLogs', { retention: logRetention })),
    });
    return vpc;
  }

  private hosts(settings: HostSettings): AutoScalingGroup {
    const securityGroup = this.securityGroup;
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: EcsOptimizedImage.amazonLinux2023(AmiHardwareType.STANDARD),
      instanceType: new InstanceType(settings.instanceType),
      userData: UserData.forLinux(),
      role: new Role(this, 'InstanceRole', { assumedBy: new ServicePrincipal('ec2.amazonaws.com') }),
      securityGroup,
      requireImdsv2: true,
      // One hop: the host itself (and its host-networked daemon) reach instance metadata, while
      // warden containers, one NAT hop further away, cannot get a token.
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: BlockDeviceVolume.ebs(settings.rootVolumeGb, { encrypted: true, volumeType: EbsDeviceVolumeType.GP3 }),
        },
      ],
    });

    // The agent runs host-networked and still needs its task role, not the instance's.
    launchTemplate.userData!.addCommands('echo ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true >> /etc/ecs/ecs.config', `mkdir -p ${HOST_STATE_DIR}`);

    const group = new AutoScalingGroup(this, 'Hosts', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate,
      minCapacity: settings.minHosts,
      maxCapacity: settings.maxHosts,
      groupMetrics: [GroupMetrics.all()],
      updatePolicy: UpdatePolicy.rollingUpdate(),
    });
    acknowledge(group, 'AwsSolutions-AS3', 'Scaling activity shows on the dashboard (in-service hosts) and in the no-healthy-host alarm.');
    const instancePolicy = launchTemplate.role!;
    acknowledge(instancePolicy, 'AwsSolutions-IAM5[Action::ecs:Submit*]', "The ECS container agent's own permissions, as aws-ecs writes them for every EC2 cluster.");
    acknowledge(instancePolicy, 'AwsSolutions-IAM5[Resource::*]', 'The ECS agent calls ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken, which take no resource.');
    return group;
  }

  private grantTask(props: ContainerHostsProps): void {
    const { storage, queues } = props;
    const stack = Stack.of(this);
    const containerInstances = stack.formatArn({
      service: 'ecs',
      resource: 'container-instance',
      resourceName: `${this.cluster.clusterName}/*`,
    });
    const tasks = stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${this.cluster.clusterName}/*` });
    const statements = [
      new PolicyStatement({ actions: ['s3:GetObject'], resources: [storage.droplets.arnForObjects('*')] }),
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [storage.droplets.bucketArn] }),
      new PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
        resources: [queues.start.queue.queueArn],
      }),
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queues.events.queue.queueArn] }),
      // The fleet view: the agent publishes its free capacity as attributes of its own container instance.
      new PolicyStatement({
        actions: ['ecs:PutAttributes', 'ecs:DeleteAttributes', 'ecs:DescribeContainerInstances'],
        resources: [containerInstances],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
      new PolicyStatement({ actions: ['ecs:ListContainerInstances'], resources: [this.cluster.clusterArn] }),
      // Which container instance is its own: the task metadata names the task, DescribeTasks its host.
      new PolicyStatement({ actions: ['ecs:DescribeTasks'], resources: [tasks] }),
    ];
    for (const statement of statements) this.taskRole.addToPolicy(statement);
    const policy = this.taskRole.node.findChild('DefaultPolicy');
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::${arnRef(storage.droplets)}/*]`,
      'Droplet keys come from StartRequests (app id, content hash): read access is one bucket wide.',
    );
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:container-instance/${ref(this.cluster)}/*]`,
      'Container instance ids are assigned at registration; the grant is limited to this cluster.',
    );
    acknowledge(
      policy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/${ref(this.cluster)}/*]`,
      'Task ids are assigned at launch; the agent describes its own task, in this cluster only.',
    );
  }

  private task(props: ContainerHostsProps): [Ec2TaskDefinition, ContainerDefinition] {
    const { storage, queues } = props;
    const task = new Ec2TaskDefinition(this, 'Task', {
      networkMode: NetworkMode.HOST,
      taskRole: this.taskRole,
      volumes: [
        { name: 'depot', host: { sourcePath: HOST_STATE_DIR } },
        // iptables inside the container loads netfilter modules from the host's kernel tree.
        { name: 'modules', host: { sourcePath: '/lib/modules' } },
      ],
    });
    const container = task.addContainer('host', {
      image: ContainerImage.fromAsset(props.projectRoot, {
        file: props.dockerfile,
        exclude: BUILD_CONTEXT_EXCLUDES,
        ignoreMode: IgnoreMode.DOCKER,
        platform: Platform.LINUX_AMD64,
      }),
      essential: true,
      // wardend creates namespaces, cgroups, overlay mounts and iptables rules on the host.
      privileged: true,
      memoryReservationMiB: 256,
      stopTimeout: Duration.seconds(120),
      // An init process reaps what the agent and wardend leave behind and forwards SIGTERM.
      linuxParameters: new LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true }),
      environment: {
        [SETTING.dropletsBucket]: storage.droplets.bucketName,
        [SETTING.startQueueUrl]: queues.start.queue.queueUrl,
        [SETTING.eventsQueueUrl]: queues.events.queue.queueUrl,
        [SETTING.cluster]: this.cluster.clusterName,
        [POWERTOOLS.serviceName]: HOST_SERVICE,
        [POWERTOOLS.metricsNamespace]: METRICS_NAMESPACE,
      },
      logging: LogDrivers.awsLogs({ streamPrefix: 'host', logGroup: this.logGroup }),
      healthCheck: {
        command: ['CMD', 'node', 'bin/dropwarden.js', 'warden', 'ping'],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(10),
        retries: 3,
        startPeriod: Duration.seconds(60),
      },
    });
    acknowledge(task, 'AwsSolutions-ECS2', 'The environment holds only bucket names, queue URLs and paths, no secrets.');
    acknowledge(task.obtainExecutionRole(), 'AwsSolutions-IAM5[Resource::*]', 'ecr:GetAuthorizationToken, which the image pull needs, takes no resource.');
    container.addUlimits({ name: UlimitName.NOFILE, softLimit: 65536, hardLimit: 65536 });
    container.addMountPoints(
      { sourceVolume: 'depot', containerPath: HOST_STATE_DIR, readOnly: false },
      { sourceVolume: 'modules', containerPath: '/lib/modules', readOnly: true },
    );
    return [task, container];
  }
}
