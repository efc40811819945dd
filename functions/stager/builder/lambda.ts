/**
 * The builder on AWS (DESIGN §8): a second Lambda function whose own role allows logs only. Per
 * build the stager assumes the builder-data role with a session policy scoped to this request's
 * objects (scope.ts), and invokes the builder with those credentials in the job; the builder's
 * report comes back as the task's outcome.
 */
import { createHash } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { type BuildJob, BuildReport } from '../../../contracts/builder.ts';
import { FAILURE_PREFIX, describeSchemaError } from '../../../contracts/staging.ts';
import type { StagerConfig } from '../config.ts';
import { RetryableError, TerminalError, asRetryable, failureText } from '../errors.ts';
import type { TaskOutcome } from '../task.ts';
import type { Builder, BuildInput } from './builder.ts';
import { buildScope, sessionPolicy } from './scope.ts';

export interface LambdaBuilderOptions {
  functionName: string;
  dataRoleArn: string;
  config: StagerConfig;
  /** Tests pass clients whose control planes are stubbed. */
  lambda?: LambdaClient;
  sts?: STSClient;
}

/** STS's shortest session; the builder's own deadline ends the build well before. */
const SESSION_SECONDS = 900;
/**
 * The builder function has the stager's timeout, and the stager still has to check and publish
 * the droplet after the build: the build gets the deadline less this (at least half of it).
 */
const PUBLISH_RESERVE_SECONDS = 60;
/** IAM's limit on a packed inline session policy. */
const MAX_POLICY_CHARS = 2048;

/** Throttling and 5xx are retried through the queue; anything else (a role the stack forgot) is the stager's own fault. */
function unreachable(what: string, err: unknown): Error {
  return asRetryable(err) ?? new TerminalError({ phase: 'internal', reason: `${what}: ${(err as Error).message}` });
}

function parseReport(payload: string): BuildReport {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch (err) {
    throw new TerminalError({
      phase: 'internal',
      reason: `the builder function answered something that is not JSON (${(err as Error).message}): ${payload.slice(0, 200)}`,
    });
  }
  const report = BuildReport.safeParse(json);
  if (!report.success) {
    throw new TerminalError({ phase: 'internal', reason: `the builder function's answer is not a BuildReport: ${describeSchemaError(report.error)}` });
  }
  return report.data;
}

export function lambdaBuilder(opts: LambdaBuilderOptions): Builder {
  const region = opts.config.stack.region;
  const lambda = opts.lambda ?? new LambdaClient({ region });
  const sts = opts.sts ?? new STSClient({ region });
  const partition = opts.dataRoleArn.split(':')[1] || 'aws';

  return {
    async build(input: BuildInput): Promise<TaskOutcome> {
      const { request, requestId } = input;
      const base = { request_id: requestId, app_id: request.app_id, task_id: `build-${createHash('sha256').update(requestId).digest('hex').slice(0, 16)}` };
      const policy = JSON.stringify(sessionPolicy(buildScope(opts.config, request, requestId, input.buildKey), partition));
      if (policy.length > MAX_POLICY_CHARS) {
        const failure = {
          phase: 'request' as const,
          reason: `the request's object keys are too long for a build's credentials (a ${policy.length}-character session policy; IAM takes ${MAX_POLICY_CHARS})`,
        };
        return { result: { ...base, task_log: '', error: FAILURE_PREFIX + failureText(failure), timings_ms: {} }, failure };
      }
      let credentials: BuildJob['credentials'];
      try {
        const out = await sts.send(new AssumeRoleCommand({ RoleArn: opts.dataRoleArn, RoleSessionName: base.task_id, DurationSeconds: SESSION_SECONDS, Policy: policy }));
        const c = out.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new Error('AssumeRole returned no credentials');
        credentials = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration?.toISOString() };
      } catch (err) {
        throw unreachable('assuming the builder-data role', err);
      }
      const deadline = Math.max(input.deadlineSeconds / 2, input.deadlineSeconds - PUBLISH_RESERVE_SECONDS);
      const job: BuildJob = { request_id: requestId, request, deadline_seconds: deadline, droplet_key: input.buildKey, credentials };
      let payload: string;
      try {
        const out = await lambda.send(new InvokeCommand({ FunctionName: opts.functionName, InvocationType: 'RequestResponse', Payload: JSON.stringify(job) }));
        payload = new TextDecoder().decode(out.Payload ?? new Uint8Array());
        if (out.FunctionError) {
          // The builder itself failed (ran out of memory or time, say): an answer, not a retry that would end in the DLQ unanswered.
          const failure = { phase: 'internal' as const, reason: `the builder function failed (${out.FunctionError}): ${payload.slice(0, 500)}` };
          return { result: { ...base, task_log: '', error: FAILURE_PREFIX + failureText(failure), timings_ms: {} }, failure };
        }
      } catch (err) {
        throw unreachable('invoking the builder function', err);
      }
      const report = parseReport(payload);
      if (report.outcome === 'retry') throw new RetryableError(`the build: ${report.message}`);
      input.log.adopt(report.result.task_log);
      return report.outcome === 'failed' ? { result: report.result, failure: report.failure } : { result: report.result };
    },
  };
}
