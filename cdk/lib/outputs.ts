/** The stack's CloudFormation outputs, named as contracts/stack-outputs.ts says. */
import { Aws, CfnOutput, Stack } from 'aws-cdk-lib';
import { OUTPUT } from '../../contracts/stack-outputs.ts';
import type { Queues } from './queues.ts';
import type { Storage } from './storage.ts';

export interface OutputValues {
  storage: Storage;
  queues: Queues;
  stagerFunctionName: string;
  clusterName: string;
  dashboardName: string;
  routeTemplate: string;
  routeDomain: string;
  loadBalancerDnsName: string;
}

/** Outputs are created on the stack itself so that their logical ids are exactly these names. */
export function addOutputs(stack: Stack, values: OutputValues): void {
  const { storage, queues } = values;
  const out = (id: string, value: string, description: string) => new CfnOutput(stack, id, { value, description });
  out(OUTPUT.region, Aws.REGION, 'AWS region of every resource below');
  out(OUTPUT.stagingQueueUrl, queues.staging.queue.queueUrl, 'Send StagingRequests here');
  out(OUTPUT.stagingDlqUrl, queues.staging.dlq.queueUrl, 'Staging requests that failed maxReceiveCount times');
  out(OUTPUT.resultsQueueUrl, queues.results.queue.queueUrl, 'StagingResults (when a request has no reply_to)');
  out(OUTPUT.resultsDlqUrl, queues.results.dlq.queueUrl, 'Results their consumer failed on');
  out(OUTPUT.startQueueUrl, queues.start.queue.queueUrl, 'Send StartRequests and StopRequests here');
  out(OUTPUT.startDlqUrl, queues.start.dlq.queueUrl, 'Start requests no host could handle');
  out(OUTPUT.eventsQueueUrl, queues.events.queue.queueUrl, 'InstanceState events from the hosts');
  out(OUTPUT.eventsDlqUrl, queues.events.dlq.queueUrl, 'Events their consumer failed on');
  out(OUTPUT.appsBucketName, storage.apps.bucketName, 'Upload app zips here');
  out(OUTPUT.dropletsBucketName, storage.droplets.bucketName, 'Droplets land here');
  out(OUTPUT.cacheBucketName, storage.cache.bucketName, 'Staging cache');
  out(OUTPUT.stagerFunctionName, values.stagerFunctionName, 'The stager Lambda function');
  out(OUTPUT.clusterName, values.clusterName, 'ECS cluster of the container hosts');
  out(OUTPUT.dashboardName, values.dashboardName, 'CloudWatch dashboard');
  out(OUTPUT.routeTemplate, values.routeTemplate, "Each app's route; {app} is its app id");
  out(OUTPUT.routeDomain, values.routeDomain, 'Apps are routed as <app>.<domain>');
  out(OUTPUT.loadBalancerDnsName, values.loadBalancerDnsName, 'Point *.<domain> here (an alias or CNAME) unless the stack has the hosted zone');
}
