/**
 * The dropwarden stack: storage and queues, the stager and builder functions, the container-host fleet and
 * their operations view, plus the outputs the CLI reads.
 */
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { DropwardenConfig } from './config.ts';
import { ContainerHosts } from './container-hosts.ts';
import { Operations } from './operations.ts';
import { BuilderFunction } from './builder-function.ts';
import { addOutputs } from './outputs.ts';
import { Queues } from './queues.ts';
import { Routes } from './routes.ts';
import { StagerFunction } from './stager-function.ts';
import { Storage } from './storage.ts';

export interface DropwardenStackProps extends StackProps {
  config: DropwardenConfig;
  /** The repository root. */
  projectRoot: string;
  /** The stager handler module; default functions/stager/handler.ts under projectRoot. */
  stagerEntry?: string;
  /** The builder handler module; default functions/builder/handler.ts under projectRoot. */
  builderEntry?: string;
  /** The host image's Dockerfile, relative to projectRoot; default container-host/Dockerfile. */
  hostDockerfile?: string;
}

export class DropwardenStack extends Stack {
  readonly storage: Storage;
  readonly queues: Queues;
  readonly stager: StagerFunction;
  readonly builder: BuilderFunction;
  readonly hosts: ContainerHosts;
  readonly routes: Routes;
  readonly operations: Operations;

  constructor(scope: Construct, id: string, props: DropwardenStackProps) {
    super(scope, id, props);
    const { config, projectRoot } = props;
    const logRetention = closestRetention(config.retention.logsDays);

    this.storage = new Storage(this, 'Storage', { retention: config.retention });
    this.queues = new Queues(this, 'Queues', {
      stagerTimeout: Duration.seconds(config.stager.timeoutSeconds),
      stagingMaxReceiveCount: config.stager.maxReceiveCount,
    });
    this.stager = new StagerFunction(this, 'Stager', {
      settings: config.stager,
      storage: this.storage,
      queues: this.queues,
      projectRoot,
      entry: props.stagerEntry ?? join(projectRoot, 'functions', 'stager', 'handler.ts'),
      logRetention,
    });
    this.builder = new BuilderFunction(this, 'Builder', {
      settings: config.stager,
      storage: this.storage,
      projectRoot,
      entry: props.builderEntry ?? join(projectRoot, 'functions', 'builder', 'handler.ts'),
      logRetention,
      runtimeLayer: this.stager.runtimeLayer,
      stagerRole: this.stager.role,
    });
    this.stager.useBuilder(this.builder, this.storage.droplets);
    this.hosts = new ContainerHosts(this, 'Hosts', {
      settings: config.hosts,
      storage: this.storage,
      queues: this.queues,
      projectRoot,
      dockerfile: props.hostDockerfile ?? 'container-host/Dockerfile',
      logRetention,
    });
    this.routes = new Routes(this, 'Routes', {
      settings: config.routes,
      hostSettings: config.hosts,
      hosts: this.hosts,
      accessLogs: this.storage.accessLogs,
    });
    this.operations = new Operations(this, 'Operations', {
      settings: config.alarms,
      queues: this.queues,
      stager: this.stager,
      builder: this.builder,
      hosts: this.hosts,
      routes: this.routes,
    });

    addOutputs(this, {
      storage: this.storage,
      queues: this.queues,
      stagerFunctionName: this.stager.function.functionName,
      clusterName: this.hosts.cluster.clusterName,
      dashboardName: this.operations.dashboard.dashboardName,
      routeTemplate: this.routes.routeTemplate,
      routeDomain: config.routes.domain,
      loadBalancerDnsName: this.routes.loadBalancer.loadBalancerDnsName,
    });
  }
}

/** CloudWatch Logs accepts only certain retention periods: take the shortest that keeps `days`. */
function closestRetention(days: number): RetentionDays {
  const allowed = Object.values(RetentionDays)
    .filter((v): v is RetentionDays => typeof v === 'number' && v > 0)
    .sort((a, b) => a - b);
  return allowed.find((v) => v >= days) ?? RetentionDays.INFINITE;
}
