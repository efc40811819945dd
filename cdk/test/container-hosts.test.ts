import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { VPC_CIDR } from '../lib/container-hosts.ts';
import { allow, arn, logicalId, objectsOf, permissionsOf, resourcesOfType, synthesize } from './synth.ts';
import type { Synthesized } from './synth.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const props = (construct: Parameters<typeof logicalId>[0]) => s.json.Resources[logicalId(construct)].Properties;

describe('network', () => {
  it('is a two-AZ VPC: public subnets, private host subnets behind one NAT gateway, an S3 endpoint, flow logs', () => {
    s.template.resourceCountIs('AWS::EC2::VPC', 1);
    s.template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: VPC_CIDR });
    s.template.resourceCountIs('AWS::EC2::Subnet', 4);
    s.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    s.template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['.s3'])] }),
    });
    s.template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
  });

  it("lets nothing reach the hosts' app ports but the load balancer (cdk/test/routes.test.ts)", () => {
    const hostSg = props(s.stack.hosts.securityGroup);
    expect(hostSg.SecurityGroupIngress).toBeUndefined();
    const ingress = resourcesOfType(s.json, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);
    expect(ingress).toEqual([
      {
        GroupId: { 'Fn::GetAtt': [logicalId(s.stack.hosts.securityGroup), 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [logicalId(s.stack.routes.securityGroup), 'GroupId'] },
        IpProtocol: 'tcp',
        FromPort: 61000,
        ToPort: 65000,
        Description: 'app instances (warden net_in ports), from the load balancer only',
      },
    ]);
  });
});

describe('hosts', () => {
  it('launch ECS-optimized Amazon Linux 2023 from a template that requires IMDSv2 with one hop', () => {
    const [[, template]] = resourcesOfType(s.json, 'AWS::EC2::LaunchTemplate');
    const d = template.Properties.LaunchTemplateData;
    expect(d.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(d.InstanceType).toBe('t3.large');
    expect(d.Monitoring).toEqual({ Enabled: true });
    expect(d.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeSize: 50, VolumeType: 'gp3' } }]);
    const ami = s.json as unknown as { Parameters: Record<string, { Default: string }> };
    expect(ami.Parameters[d.ImageId.Ref].Default).toBe('/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id');
    const userData = JSON.stringify(d.UserData);
    expect(userData).toContain('ECS_CLUSTER=');
    expect(userData).toContain(JSON.stringify({ Ref: logicalId(s.stack.hosts.cluster) }));
    expect(userData).toContain('ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true');
  });

  it('run in an Auto Scaling group in the private subnets, registered as the cluster capacity', () => {
    s.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '1',
      MaxSize: '2',
      LaunchTemplate: Match.objectLike({ LaunchTemplateId: Match.anyValue() }),
      MetricsCollection: [{ Granularity: '1Minute' }],
    });
    s.template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: Match.objectLike({ ManagedDraining: 'ENABLED', ManagedTerminationProtection: 'DISABLED' }),
    });
    expect(props(s.stack.hosts.cluster).ClusterSettings).toEqual([{ Name: 'containerInsights', Value: 'enabled' }]);
  });
});

describe('daemon service', () => {
  it('runs one task per host, launch type EC2, replaced in place', () => {
    s.template.resourceCountIs('AWS::ECS::Service', 1);
    s.template.hasResourceProperties('AWS::ECS::Service', {
      SchedulingStrategy: 'DAEMON',
      LaunchType: 'EC2',
      CapacityProviderStrategy: Match.absent(),
      DesiredCount: Match.absent(),
      Cluster: { Ref: logicalId(s.stack.hosts.cluster) },
      TaskDefinition: { Ref: logicalId(s.stack.hosts.taskDefinition) },
      DeploymentConfiguration: Match.objectLike({ MinimumHealthyPercent: 0, MaximumPercent: 100 }),
    });
  });

  it('task: host network, privileged, the depot bind-mounted from the host, the image from container-host/Dockerfile', () => {
    const task = props(s.stack.hosts.taskDefinition);
    expect(task.NetworkMode).toBe('host');
    expect(task.RequiresCompatibilities).toEqual(['EC2']);
    expect(task.TaskRoleArn).toEqual(arn(s.stack.hosts.taskRole));
    expect(task.Volumes).toEqual([
      { Name: 'depot', Host: { SourcePath: '/var/lib/dropwarden' } },
      { Name: 'modules', Host: { SourcePath: '/lib/modules' } },
    ]);
    expect(task.ContainerDefinitions).toHaveLength(1);
    const [c] = task.ContainerDefinitions;
    expect(c).toMatchObject({
      Essential: true,
      Privileged: true,
      MemoryReservation: 256,
      LinuxParameters: { InitProcessEnabled: true },
      MountPoints: [
        { SourceVolume: 'depot', ContainerPath: '/var/lib/dropwarden', ReadOnly: false },
        { SourceVolume: 'modules', ContainerPath: '/lib/modules', ReadOnly: true },
      ],
      LogConfiguration: { LogDriver: 'awslogs' },
    });
    const env = Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
    expect(env).toEqual({
      DROPWARDEN_DROPLETS_BUCKET: { Ref: logicalId(s.stack.storage.droplets) },
      DROPWARDEN_START_QUEUE_URL: { Ref: logicalId(s.stack.queues.start.queue) },
      DROPWARDEN_EVENTS_QUEUE_URL: { Ref: logicalId(s.stack.queues.events.queue) },
      DROPWARDEN_CLUSTER: { Ref: logicalId(s.stack.hosts.cluster) },
      DROPWARDEN_ROUTES_LISTENER_ARN: { Ref: logicalId(s.stack.routes.listener) },
      DROPWARDEN_ROUTES_VPC_ID: { Ref: logicalId(s.stack.hosts.vpc) },
      DROPWARDEN_ROUTES_DOMAIN: 'apps.example.com',
      DROPWARDEN_ROUTES_DRAIN_SECONDS: '30',
      POWERTOOLS_SERVICE_NAME: 'agent',
      POWERTOOLS_METRICS_NAMESPACE: 'dropwarden',
    });

    // The image is staged, not built: synth needs no Docker; `cdk deploy` builds and pushes it.
    const assets = JSON.parse(readFileSync(join(s.assemblyDir, `${s.stack.artifactId}.assets.json`), 'utf8')).dockerImages;
    const images = Object.values<any>(assets);
    expect(images).toHaveLength(1);
    expect(images[0].source).toMatchObject({ dockerFile: 'container-host/Dockerfile', platform: 'linux/amd64' });
    expect(c.Image['Fn::Sub']).toContain(Object.keys(assets)[0]);
    const context = join(s.assemblyDir, images[0].source.directory);
    expect(existsSync(join(context, 'container-host', 'Dockerfile'))).toBe(true);
    expect(existsSync(join(context, 'package-lock.json'))).toBe(true);
    expect(existsSync(join(context, 'container-host', 'debian-packages.txt'))).toBe(true);
    for (const left of ['node_modules', '.git', 'cdk.out', 'test']) expect(existsSync(join(context, left))).toBe(false);
  });

  it("task role: the start and events queues, droplet reads, its own cluster's attributes and tasks only (and routes: cdk/test/routes.test.ts)", () => {
    const { droplets } = s.stack.storage;
    const { start, events } = s.stack.queues;
    const cluster = s.stack.hosts.cluster;
    const containerInstances = {
      'Fn::Join': [
        '',
        ['arn:', { Ref: 'AWS::Partition' }, ':ecs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':container-instance/', { Ref: logicalId(cluster) }, '/*'],
      ],
    };
    const tasks = {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':task/', { Ref: logicalId(cluster) }, '/*']],
    };
    expect(permissionsOf(s.json, s.stack.hosts.taskRole).filter((l) => !l.includes(' elasticloadbalancing:'))).toEqual(
      [
        ...allow(['s3:GetObject'], [objectsOf(droplets)]),
        ...allow(['s3:ListBucket'], [arn(droplets)]),
        ...allow(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'], [arn(start.queue)]),
        ...allow(['sqs:SendMessage'], [arn(events.queue)]),
        ...allow(['ecs:DeleteAttributes', 'ecs:DescribeContainerInstances', 'ecs:PutAttributes'], [containerInstances], { ArnEquals: { 'ecs:cluster': arn(cluster) } }),
        ...allow(['ecs:ListContainerInstances'], [arn(cluster)]),
        ...allow(['ecs:DescribeTasks'], [tasks]),
      ].sort(),
    );
  });

  it("execution role: pull the image and write the task's log group", () => {
    const role = s.stack.hosts.taskDefinition.executionRole!;
    const lines = permissionsOf(s.json, role);
    expect(lines).toContain(allow(['ecr:GetAuthorizationToken'], ['*'])[0]);
    expect(lines).toEqual(expect.arrayContaining(allow(['logs:CreateLogStream', 'logs:PutLogEvents'], [arn(s.stack.hosts.logGroup)])));
    expect(lines.filter((l) => !l.includes('ecr:') && !l.includes('logs:'))).toEqual([]);
  });
});
