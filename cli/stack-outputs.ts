/** A deployed stack's CloudFormation outputs, as the CLI's stack config (`config --stack`). */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { StackConfig } from '../lib/stack-config.ts';
import { OUTPUT } from '../contracts/stack-outputs.ts';
import { UsageError } from './errors.ts';

/** Which output holds each queue and bucket of the stack config. */
export const STACK_OUTPUTS = {
  staging: OUTPUT.stagingQueueUrl,
  staging_dlq: OUTPUT.stagingDlqUrl,
  results: OUTPUT.resultsQueueUrl,
  start: OUTPUT.startQueueUrl,
  events: OUTPUT.eventsQueueUrl,
  apps: OUTPUT.appsBucketName,
  droplets: OUTPUT.dropletsBucketName,
  cache: OUTPUT.cacheBucketName,
  routes: OUTPUT.routeTemplate,
} as const;

export function stackFromOutputs(region: string, outputs: Record<string, string>, stackName: string): StackConfig {
  const get = (name: string) => {
    const v = outputs[name];
    if (!v) throw new UsageError(`stack ${stackName} has no output ${name}: is it a dropwarden stack, deployed from this version?`);
    return v;
  };
  const o = STACK_OUTPUTS;
  return {
    region,
    queues: { staging: get(o.staging), staging_dlq: get(o.staging_dlq), results: get(o.results), start: get(o.start), events: get(o.events) },
    buckets: { apps: get(o.apps), droplets: get(o.droplets), cache: get(o.cache) },
    // A stack deployed before routes has no template: the config says so with null.
    routes: outputs[o.routes] || undefined,
  };
}

export async function stackFromCloudFormation(stackName: string): Promise<StackConfig> {
  const cfn = new CloudFormationClient({});
  const region = await cfn.config.region();
  // CloudFormation answers a stack it does not have with a ValidationError, not an empty list.
  const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName })).catch((err: Error) => {
    if (err.name === 'ValidationError' && /does not exist/.test(err.message)) return { Stacks: [] };
    throw err;
  });
  const stack = out.Stacks?.[0];
  if (!stack) throw new UsageError(`no CloudFormation stack named ${stackName} in ${region}`);
  const outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  return stackFromOutputs(region, outputs, stackName);
}
