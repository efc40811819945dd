/**
 * Where the processes put their EMF metrics and where the CDK stack's dashboard and alarms look
 * for them (DESIGN §11, §13): the CloudWatch namespace, and each process's `service` dimension.
 */
export const METRICS_NAMESPACE = 'dropwarden';
export const STAGER_SERVICE = 'stager';
export const HOST_SERVICE = 'agent';
