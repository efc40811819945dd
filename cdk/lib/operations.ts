/**
 * What an operator looks at: one dashboard (queues, staging by phase, the function, the hosts)
 * and the alarms that say something needs a person. Staging and host metrics are the EMF
 * metrics the stager and agent write with Powertools (namespace `dropwarden`).
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Alarm, AlarmStatusWidget, ComparisonOperator, Dashboard, GraphWidget, MathExpression, Metric, TextWidget, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { HttpCodeElb } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { AlarmSettings } from './config.ts';
import type { BuilderFunction } from './builder-function.ts';
import type { ContainerHosts } from './container-hosts.ts';
import type { Queues, QueueWithDlq } from './queues.ts';
import type { Routes } from './routes.ts';
import { METRICS_NAMESPACE } from '../../contracts/metrics.ts';
import type { StagerFunction } from './stager-function.ts';

export interface OperationsProps {
  settings: AlarmSettings;
  queues: Queues;
  stager: StagerFunction;
  builder: BuilderFunction;
  hosts: ContainerHosts;
  routes: Routes;
}

const PERIOD = Duration.minutes(5);
const WIDTH = 8;

/**
 * A dashboard-only series per dimension value of an EMF metric. SEARCH matches whatever
 * dimensions the writer adds (Powertools adds `service`), so the chart survives their changes.
 */
function emfSearch(metricName: string, statistic: string, label: string): MathExpression {
  return new MathExpression({
    expression: `SEARCH('Namespace="${METRICS_NAMESPACE}" MetricName="${metricName}"', '${statistic}', ${PERIOD.toSeconds()})`,
    usingMetrics: {},
    label,
    period: PERIOD,
  });
}

export class Operations extends Construct {
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { queues, stager, builder, hosts, routes, settings } = props;
    const lb = routes.loadBalancer;
    const lbMetric = (metricName: string, statistic: string, label: string) => lb.metrics.custom(metricName, { statistic, period: PERIOD, label });
    const named: Array<[string, QueueWithDlq]> = [
      ['staging', queues.staging],
      ['results', queues.results],
      ['start', queues.start],
      ['events', queues.events],
    ];
    const fn = stager.function;
    const clusterName = hosts.cluster.clusterName;
    const runningHosts = new Metric({
      namespace: 'ECS/ContainerInsights',
      metricName: 'RunningTaskCount',
      dimensionsMap: { ClusterName: clusterName, ServiceName: hosts.service.serviceName },
      statistic: 'Minimum',
      period: Duration.minutes(1),
    });

    // Alarms
    for (const [name, pair] of named) {
      this.alarm(`${title(name)}DlqNotEmpty`, {
        metric: pair.dlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1) }),
        threshold: 0,
        description: `Messages reached the ${name} dead-letter queue: read them, fix the cause, redrive.`,
      });
    }
    this.alarm('StagingBacklogOld', {
      metric: queues.staging.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: Duration.minutes(1) }),
      threshold: settings.stagingOldestMessageSeconds,
      evaluationPeriods: 3,
      description: 'Staging requests wait too long: the stager is failing, throttled or at its maximum concurrency.',
    });
    this.alarm('StartBacklogOld', {
      metric: queues.start.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: Duration.minutes(1) }),
      threshold: settings.startOldestMessageSeconds,
      evaluationPeriods: 3,
      description: 'Start requests wait too long: no host has free capacity, or the agents are down.',
    });
    this.alarm('StagerErrorRate', {
      metric: errorRate(fn, 'stager error rate (%)'),
      threshold: settings.lambdaErrorRatePercent,
      evaluationPeriods: 2,
      description: 'The stager function itself fails (crashes, timeouts), not just the apps it stages.',
    });
    // The stager answers a failed builder invocation as a failed staging, so only this alarm tells.
    this.alarm('BuilderErrorRate', {
      metric: errorRate(builder.function, 'builder error rate (%)'),
      threshold: settings.lambdaErrorRatePercent,
      evaluationPeriods: 2,
      description: 'The builder function itself fails (out of memory or time, a crash), not just the builds it runs.',
    });
    this.alarm('StagerThrottled', {
      metric: fn.metricThrottles({ statistic: 'Sum', period: PERIOD }),
      threshold: 0,
      description: 'Lambda throttles the stager: raise the account concurrency or lower stagerMaxConcurrency.',
    });
    this.alarm('NoHealthyHost', {
      metric: runningHosts,
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      // No data from Container Insights means no task is reporting: that is the failure itself.
      treatMissingData: TreatMissingData.BREACHING,
      description: 'No container host runs the wardend+agent daemon: apps cannot start.',
    });
    this.alarm('LoadBalancer5xx', {
      metric: lb.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { statistic: 'Sum', period: PERIOD }),
      threshold: settings.loadBalancer5xxCount,
      description: 'The load balancer itself answers 5xx: apps without a healthy instance (503) or unreachable (502/504). See unhealthy targets on the dashboard.',
    });
    if (settings.topicArn) {
      const topic = Topic.fromTopicArn(this, 'AlarmTopic', settings.topicArn);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(new SnsAction(topic));
        alarm.addOkAction(new SnsAction(topic));
      }
    }

    // Dashboard
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-dropwarden`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# dropwarden\nQueues → stager (Lambda) → droplets → hosts (ECS daemon). An alarm in red names what to look at.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 3 }));
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Queue depth (visible messages)',
        width: WIDTH,
        left: named.map(([name, pair]) => pair.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1), label: name })),
      }),
      new GraphWidget({
        title: 'Oldest message age (s)',
        width: WIDTH,
        left: named.map(([name, pair]) => pair.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: Duration.minutes(1), label: name })),
      }),
      new GraphWidget({
        title: 'Dead-letter queue depth',
        width: WIDTH,
        left: named.map(([name, pair]) => pair.dlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1), label: `${name} DLQ` })),
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Staging p50 by phase (ms)',
        width: 6,
        left: [emfSearch('PhaseDuration', 'p50', "${PROP('Dim.Phase')}")],
      }),
      new GraphWidget({
        title: 'Staging p99 by phase (ms)',
        width: 6,
        left: [emfSearch('PhaseDuration', 'p99', "${PROP('Dim.Phase')}")],
      }),
      new GraphWidget({
        title: 'Staging failures by reason',
        width: 6,
        left: [emfSearch('StagingFailures', 'Sum', "${PROP('Dim.Reason')}")],
      }),
      new GraphWidget({
        title: 'Droplet size (bytes)',
        width: 6,
        left: [emfSearch('DropletSize', 'p50', 'p50'), emfSearch('DropletSize', 'Maximum', 'max')],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Stager invocations, errors, throttles',
        width: WIDTH,
        left: [
          fn.metricInvocations({ statistic: 'Sum', period: PERIOD, label: 'invocations' }),
          fn.metricErrors({ statistic: 'Sum', period: PERIOD, label: 'errors' }),
          fn.metricThrottles({ statistic: 'Sum', period: PERIOD, label: 'throttles' }),
        ],
      }),
      new GraphWidget({
        title: 'Stager duration (ms)',
        width: WIDTH,
        left: ['p50', 'p99', 'Maximum'].map((statistic) => fn.metricDuration({ statistic, period: PERIOD, label: statistic })),
      }),
      new GraphWidget({
        title: 'Stager concurrent executions',
        width: WIDTH,
        left: [fn.metric('ConcurrentExecutions', { statistic: 'Maximum', period: Duration.minutes(1), label: 'concurrent' })],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Hosts',
        width: WIDTH,
        left: [
          new Metric({
            namespace: 'AWS/AutoScaling',
            metricName: 'GroupInServiceInstances',
            dimensionsMap: { AutoScalingGroupName: hosts.autoScalingGroup.autoScalingGroupName },
            statistic: 'Minimum',
            period: Duration.minutes(1),
            label: 'in service (ASG)',
          }),
          new Metric({
            namespace: 'ECS/ContainerInsights',
            metricName: 'ContainerInstanceCount',
            dimensionsMap: { ClusterName: clusterName },
            statistic: 'Minimum',
            period: Duration.minutes(1),
            label: 'registered with ECS',
          }),
          runningHosts.with({ label: 'running the daemon' }),
        ],
      }),
      new GraphWidget({
        title: 'Host free memory (MB, per host)',
        width: WIDTH,
        left: [emfSearch('FreeMemory', 'Minimum', "${PROP('Dim.Host')}")],
      }),
      new GraphWidget({
        title: 'Instance states reported',
        width: WIDTH,
        left: [emfSearch('InstanceStates', 'Sum', "${PROP('Dim.State')}")],
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Routes: requests and 5xx',
        width: WIDTH,
        left: [lbMetric('RequestCount', 'Sum', 'requests')],
        right: [
          lb.metrics.httpCodeElb(HttpCodeElb.ELB_5XX_COUNT, { statistic: 'Sum', period: PERIOD, label: 'load balancer 5xx' }),
          lbMetric('HTTPCode_Target_5XX_Count', 'Sum', 'app 5xx'),
        ],
      }),
      new GraphWidget({
        title: 'Routes: app response time (s)',
        width: WIDTH,
        left: ['p50', 'p99'].map((statistic) => lbMetric('TargetResponseTime', statistic, statistic)),
      }),
      new GraphWidget({
        title: 'Routes: unhealthy targets per app',
        width: WIDTH,
        // Target groups come and go with apps: a search finds whichever exist.
        left: [
          new MathExpression({
            expression: `SEARCH('{AWS/ApplicationELB,LoadBalancer,TargetGroup} MetricName="UnHealthyHostCount" LoadBalancer="${lb.loadBalancerFullName}"', 'Maximum', ${PERIOD.toSeconds()})`,
            usingMetrics: {},
            label: "${PROP('Dim.TargetGroup')}",
            period: PERIOD,
          }),
        ],
      }),
    );
  }

  private alarm(
    id: string,
    props: {
      metric: IMetric;
      threshold: number;
      description: string;
      evaluationPeriods?: number;
      comparisonOperator?: ComparisonOperator;
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      metric: props.metric,
      threshold: props.threshold,
      evaluationPeriods: props.evaluationPeriods ?? 1,
      comparisonOperator: props.comparisonOperator ?? ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: props.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: props.description,
    });
    this.alarms.push(alarm);
    return alarm;
  }
}

function errorRate(fn: IFunction, label: string): MathExpression {
  return new MathExpression({
    expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
    usingMetrics: {
      errors: fn.metricErrors({ statistic: 'Sum', period: PERIOD }),
      invocations: fn.metricInvocations({ statistic: 'Sum', period: PERIOD }),
    },
    label,
    period: PERIOD,
  });
}

function title(name: string): string {
  return name[0].toUpperCase() + name.slice(1);
}
