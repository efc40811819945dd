/** Structured JSON logs and CloudWatch metrics (EMF) for the stager, via Powertools. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, STAGER_SERVICE } from '../../contracts/metrics.ts';
import type { Phase } from '../../contracts/staging.ts';

export const logger = new Logger({ serviceName: 'dropwarden-stager' });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: STAGER_SERVICE });

export function recordPhase(phase: Phase, ms: number): void {
  const m = metrics.singleMetric();
  m.addDimension('Phase', phase);
  m.addMetric('PhaseDuration', MetricUnit.Milliseconds, ms);
}

export function recordDropletSize(bytes: number): void {
  metrics.singleMetric().addMetric('DropletSize', MetricUnit.Bytes, bytes);
}

export function recordFailure(reason: string): void {
  const m = metrics.singleMetric();
  m.addDimension('Reason', reason);
  m.addMetric('StagingFailures', MetricUnit.Count, 1);
}
