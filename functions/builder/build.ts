/**
 * The builder's side of a build (DESIGN §8): the staging task for one BuildJob, its droplet
 * uploaded to the job's build key, answered as a BuildReport. It is given an S3 client that
 * holds only the job's credentials.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BuildJob, BuildReport } from '../../contracts/builder.ts';
import type { StagerConfig } from '../stager/config.ts';
import { asRetryable } from '../stager/errors.ts';
import { runStagingTask } from '../stager/task.ts';
import type { TaskLog } from '../stager/task-log.ts';

export async function runBuild(job: BuildJob, deps: { config: StagerConfig; s3: S3Client; log: TaskLog }): Promise<BuildReport> {
  try {
    const { result, failure } = await runStagingTask(job.request, job.request_id, {
      config: { ...deps.config, deadlineSeconds: job.deadline_seconds },
      s3: deps.s3,
      log: deps.log,
      buildKey: job.droplet_key,
    });
    if (failure) return { outcome: 'failed', result, failure };
    return { outcome: 'built', result };
  } catch (err) {
    const retry = asRetryable(err);
    if (retry) return { outcome: 'retry', message: retry.message };
    throw err;
  }
}
