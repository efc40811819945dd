/**
 * The environment the stack hands to the stager function and the host container, besides the
 * `DROPWARDEN_*` names of contracts/settings.ts.
 */

/** Powertools reads these; `service` also becomes a dimension of every EMF metric. */
export const POWERTOOLS = {
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;
