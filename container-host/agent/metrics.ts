/**
 * The agent's CloudWatch metrics as EMF lines on stdout (Powertools), which the awslogs driver
 * ships and CloudWatch turns into metrics. Names and dimensions are what the dashboard in
 * cdk/lib/operations.ts searches for: namespace `dropwarden`, dimension `service` = `agent`,
 * `FreeMemory` (and `FreeDisk`) per `Host`, `InstanceStates` per `State`, `StartsWaitingForRoom`
 * per `Host` (start requests left on the queue because they did not fit then).
 *
 * Calls only record; flush() writes. The agent flushes about once a minute and when it stops:
 * free capacity is the latest value (written at every flush, so the series has no gaps), state
 * changes are counted between flushes.
 */
import { hostname } from 'node:os';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { InstanceStateName } from '../../contracts/instances.ts';
import { HOST_SERVICE, METRICS_NAMESPACE } from '../../contracts/metrics.ts';

export interface AgentMetrics {
  freeCapacity(memoryMb: number, diskMb: number): void;
  instanceState(state: 'STARTING' | 'RUNNING' | 'CRASHED' | 'STOPPED'): void;
  /** A start request that does not fit now was left on the queue (for this host later, or another). */
  startWaiting(): void;
  flush(): void;
}

export function createAgentMetrics(): AgentMetrics {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: HOST_SERVICE });
  // With host networking this is the EC2 host's name: one series per host.
  const host = hostname();
  let free: { memoryMb: number; diskMb: number } | undefined;
  const transitions = new Map<InstanceStateName, number>();
  let waiting = 0;

  return {
    freeCapacity(memoryMb, diskMb) {
      if (Number.isFinite(memoryMb) && Number.isFinite(diskMb)) free = { memoryMb, diskMb };
    },
    instanceState(state) {
      transitions.set(state, (transitions.get(state) ?? 0) + 1);
    },
    startWaiting() {
      waiting++;
    },
    flush() {
      if (free) {
        metrics.addDimension('Host', host);
        metrics.addMetric('FreeMemory', MetricUnit.Megabytes, free.memoryMb);
        metrics.addMetric('FreeDisk', MetricUnit.Megabytes, free.diskMb);
        metrics.publishStoredMetrics();
      }
      for (const [state, count] of transitions) {
        metrics.addDimension('State', state);
        metrics.addMetric('InstanceStates', MetricUnit.Count, count);
        metrics.publishStoredMetrics();
      }
      transitions.clear();
      if (waiting) {
        metrics.addDimension('Host', host);
        metrics.addMetric('StartsWaitingForRoom', MetricUnit.Count, waiting);
        metrics.publishStoredMetrics();
        waiting = 0;
      }
    },
  };
}
