import { beforeAll, describe, expect, it } from 'vitest';
import { logicalId, resourcesOfType, synthesize } from './synth.ts';
import type { CfnResource, Synthesized } from './synth.ts';

let s: Synthesized;
let alarms: Map<string, Record<string, any>>;
beforeAll(() => {
  s = synthesize();
  alarms = new Map(s.stack.operations.alarms.map((a) => [a.node.id, s.json.Resources[logicalId(a)].Properties]));
});

describe('alarms', () => {
  it('are these eleven, each with a description that says what to do', () => {
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 11);
    expect([...alarms.keys()].sort()).toEqual([
      'BuilderErrorRate',
      'EventsDlqNotEmpty',
      'LoadBalancer5xx',
      'NoHealthyHost',
      'ResultsDlqNotEmpty',
      'StagerErrorRate',
      'StagerThrottled',
      'StagingBacklogOld',
      'StagingDlqNotEmpty',
      'StartBacklogOld',
      'StartDlqNotEmpty',
    ]);
    for (const alarm of alarms.values()) expect(alarm.AlarmDescription).toMatch(/^.{30,}$/);
  });

  it.each(['staging', 'results', 'start', 'events'] as const)('%s DLQ: any message at all', (name) => {
    const alarm = alarms.get(`${name[0].toUpperCase()}${name.slice(1)}DlqNotEmpty`)!;
    expect(alarm).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(s.stack.queues[name].dlq), 'QueueName'] } }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
    });
  });

  it('oldest message age on the staging and start queues', () => {
    expect(alarms.get('StagingBacklogOld')).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(s.stack.queues.staging.queue), 'QueueName'] } }],
      Threshold: 900,
      EvaluationPeriods: 3,
    });
    expect(alarms.get('StartBacklogOld')).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(s.stack.queues.start.queue), 'QueueName'] } }],
      Threshold: 300,
    });
  });

  it.each([
    ['StagerErrorRate', 'stager'],
    ['BuilderErrorRate', 'builder'],
  ] as const)('%s: errors / invocations of the %s function, in percent', (id, name) => {
    const fnRef = { Ref: logicalId(s.stack[name].function) };
    const rate = alarms.get(id)!;
    expect(rate.EvaluationPeriods).toBe(2);
    expect(rate.Threshold).toBe(5);
    const expression = rate.Metrics.find((m: any) => m.Expression);
    expect(expression.Expression).toBe('IF(invocations > 0, 100 * errors / invocations, 0)');
    const inputs = Object.fromEntries(rate.Metrics.filter((m: any) => m.MetricStat).map((m: any) => [m.Id, m.MetricStat]));
    expect(inputs.errors).toMatchObject({ Metric: { Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: fnRef }] }, Stat: 'Sum' });
    expect(inputs.invocations).toMatchObject({ Metric: { MetricName: 'Invocations', Dimensions: [{ Name: 'FunctionName', Value: fnRef }] }, Stat: 'Sum' });
  });

  it('stager throttles', () => {
    expect(alarms.get('StagerThrottled')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('no healthy host: fewer than one running daemon task, and silence counts as none', () => {
    expect(alarms.get('NoHealthyHost')).toMatchObject({
      Namespace: 'ECS/ContainerInsights',
      MetricName: 'RunningTaskCount',
      Dimensions: [
        { Name: 'ClusterName', Value: { Ref: logicalId(s.stack.hosts.cluster) } },
        { Name: 'ServiceName', Value: { 'Fn::GetAtt': [logicalId(s.stack.hosts.service), 'Name'] } },
      ],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
  });

  it('notify nobody unless an SNS topic is configured', () => {
    for (const alarm of alarms.values()) expect(alarm.AlarmActions).toBeUndefined();
  });
});

describe('dashboard', () => {
  let body: string;
  beforeAll(() => {
    const [[, dashboard]] = resourcesOfType(s.json, 'AWS::CloudWatch::Dashboard') as Array<[string, CfnResource]>;
    // The body is a Fn::Join of JSON text and references: flatten it to search it.
    body = JSON.stringify(dashboard.Properties.DashboardBody);
  });

  it('shows queue depth, oldest message age and DLQ depth for every queue', () => {
    for (const name of ['staging', 'results', 'start', 'events'] as const) {
      const { queue, dlq } = s.stack.queues[name];
      expect(body).toContain(logicalId(queue));
      expect(body).toContain(logicalId(dlq));
    }
    expect(body).toContain('ApproximateNumberOfMessagesVisible');
    expect(body).toContain('ApproximateAgeOfOldestMessage');
    expect(body).toContain('Dead-letter queue depth');
  });

  it('shows staging p50/p99 by phase, failures by reason and droplet size from the EMF metrics', () => {
    const search = (metric: string, stat: string) => `SEARCH('Namespace=\\\\\\"dropwarden\\\\\\" MetricName=\\\\\\"${metric}\\\\\\"', '${stat}', 300)`;
    expect(body).toContain(search('PhaseDuration', 'p50'));
    expect(body).toContain(search('PhaseDuration', 'p99'));
    expect(body).toContain(search('StagingFailures', 'Sum'));
    expect(body).toContain(search('DropletSize', 'p50'));
    expect(body).toContain(search('InstanceStates', 'Sum'));
    expect(body).toContain("PROP('Dim.Phase')");
    expect(body).toContain("PROP('Dim.Reason')");
  });

  it("shows the function's errors, throttles and duration, the hosts and their free memory", () => {
    for (const metric of [
      'Invocations',
      'Errors',
      'Throttles',
      'Duration',
      'ConcurrentExecutions',
      'GroupInServiceInstances',
      'ContainerInstanceCount',
      'RunningTaskCount',
    ]) {
      expect(body).toContain(`"${metric}"`.replace(/"/g, '\\"'));
    }
    expect(body).toContain('FreeMemory');
    // the alarm status row lists every alarm
    for (const alarm of s.stack.operations.alarms) expect(body).toContain(logicalId(alarm));
  });
});
